"""Targets load, sync idempotently on both backends, and a broken one fails with file, code and reason."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event
from sqlmodel import Session, col, select

from hub import vocab
from hub.catalogue import Catalogue
from hub.errors import CatalogueError
from hub.models import MetricDefinition, Period, Target
from hub.settings import REPO_ROOT
from hub.targets import load_targets, sync_targets

DATA = REPO_ROOT / "data"
HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")
GA_FILE, OTHER_FILE = "global_alliance.yaml", "frameworks.yaml"

Docs = dict[str, dict[str, Any]]


def test_shipped_targets_cover_every_kind_and_the_global_alliance_goals(catalogue: Catalogue) -> None:
    specs = load_targets(DATA, catalogue)
    kinds = Counter(spec.kind for spec in specs)
    assert set(kinds) == set(vocab.TARGET_KINDS)
    assert len(specs) >= 13
    by_code = {spec.code: spec for spec in specs}
    icse = by_code["ga_icse_victims_growth"]
    assert icse.kind == "growth" and icse.target_value == pytest.approx(0.10)
    assert by_code["ga_hotline_removal_within_72h"].stored_parameters()["threshold_hours"] == 72
    assert {spec.scope.type for spec in specs} == set(vocab.TARGET_SCOPES)
    for spec in specs:
        assert spec.baseline.rule == "observed" or spec.baseline.source, spec.code


@contextmanager
def _writes_to_target(session: Session) -> Iterator[list[str]]:
    """Collect the INSERT and UPDATE statements sent for the target table."""
    seen: list[str] = []
    engine = session.get_bind()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.lstrip().upper().replace('"', "")
        if head.startswith(("INSERT INTO TARGET ", "UPDATE TARGET ")):
            seen.append(head.split(" SET ")[0])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_shipped_targets_are_stored_and_a_second_sync_changes_nothing(
    session: Session, catalogue: Catalogue
) -> None:
    specs = load_targets(DATA, catalogue)  # the session fixture already synced them once
    rows = {row.code: row for row in session.exec(select(Target))}
    assert set(rows) == {spec.code for spec in specs}
    icse = rows["ga_icse_victims_growth"]
    metric = session.get(MetricDefinition, icse.metric_id)
    period = session.get(Period, icse.baseline_period_id)
    assert metric is not None and metric.code == "le_victims_identified_icse_cumulative"
    assert period is not None and (period.code, period.kind) == ("2021", "year")
    assert (icse.baseline_value, icse.target_value, icse.target_year) == (None, 0.10, 2030)
    assert icse.parameters == {"annual_rate": 0.10, "baseline_rule": "observed"}
    iwf = rows["iwf_uk_removal_within_60_minutes"]
    assert (iwf.scope_type, iwf.scope_value, iwf.baseline_value) == ("country", "GB", 0.38)
    assert iwf.parameters["scope_basis"] == "country_dimension"
    ids = {code: row.id for code, row in rows.items()}

    session.commit()
    with _writes_to_target(session) as statements:
        assert sync_targets(session, catalogue, specs) == ids
        session.commit()
    assert statements == []


def test_a_changed_target_is_updated_in_place(session: Session, catalogue: Catalogue) -> None:
    specs = load_targets(DATA, catalogue)
    before = session.exec(select(Target).where(col(Target.code) == specs[0].code)).one()
    changed = specs[0].model_copy(update={"name": "Renamed target"})
    with _writes_to_target(session) as statements:
        ids = sync_targets(session, catalogue, [changed, *specs[1:]])
        session.commit()
    assert statements == ["UPDATE TARGET"]
    after = session.exec(select(Target).where(col(Target.code) == specs[0].code)).one()
    assert after.name == "Renamed target" and ids[specs[0].code] == before.id
    assert len(session.exec(select(Target)).all()) == len(specs)


# --- broken target files ----------------------------------------------------------------


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    for folder in ("catalogue", "categories", "targets"):
        shutil.copytree(DATA / folder, target / folder)
    return target


def _edit_targets(data_dir: Path, edit: Callable[[Docs], object]) -> None:
    folder = data_dir / "targets"
    docs = {path.name: yaml.safe_load(path.read_text()) for path in folder.glob("*.yaml")}
    edit(docs)
    for name, doc in docs.items():
        (folder / name).write_text(yaml.safe_dump(doc, sort_keys=False))


def _entry(docs: Docs, code: str) -> dict[str, Any]:
    return next(entry for doc in docs.values() for entry in doc["targets"] if entry["code"] == code)


def _set(code: str, **changes: Any) -> Callable[[Docs], None]:
    """An edit that replaces top-level fields (or, with a dict, merges into one) of a target."""

    def edit(docs: Docs) -> None:
        entry = _entry(docs, code)
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(entry.get(key), dict):
                entry[key] = {**entry[key], **value}
            else:
                entry[key] = value

    return edit


Case = tuple[Callable[[Docs], object], str, str]  # edit, target code, reason


def _case(code: str, reason: str, **changes: Any) -> Case:
    return _set(code, **changes), code, reason


# Every case edits its own target, so that they can all be applied at once and each must
# still be reported.
BAD_TARGETS: dict[str, Case] = {
    "unknown metric": _case(
        "ga_icse_countries_connected", "metric 'le_nothing' is not in the catalogue", metric="le_nothing"
    ),
    "growth on a share": _case(
        "ga_icse_victims_growth",
        "a growth target needs a count metric; metric 'co_proactive_share' is share",
        metric="co_proactive_share",
    ),
    "share threshold on a count": _case(
        "inhope_removal_within_6_days",
        "a share_threshold target needs a distribution metric",
        metric="ht_notices_sent",
    ),
    "threshold not a bucket edge": _case(
        "ga_hotline_removal_within_72h",
        "threshold_hours 5 is not an edge of bucket scheme ttd-v1",
        parameters={"threshold_hours": 5},
    ),
    "time threshold on a count": _case(
        "cybertip_hotline_p90_7_days",
        "a time_threshold target needs a distribution metric for statistic p90",
        metric="ht_notices_sent",
    ),
    "median of a mean": _case(
        "ncmec_mean_hours_to_takedown",
        "needs a distribution metric for statistic median",
        parameters={"statistic": "median"},
    ),
    "adoption on a count": _case(
        "grooming_detection_adoption",
        "an adoption target needs a boolean metric combined as share_of_reporters",
        metric="co_items_actioned",
    ),
    "participation on a time": _case(
        "hotlines_reporting_notices",
        "a participation target needs a count metric",
        metric="ht_notice_to_removal_time",
    ),
    "target year before baseline": _case(
        "ga_companies_reporting",
        "target year 2019 is not after the baseline year 2021",
        target={"year": 2019},
    ),
    "direction against the metric": _case(
        "dsa_company_median_hours",
        "direction higher_is_better contradicts the measure: metric 'co_takedown_time' is lower_is_better",
        direction="higher_is_better",
    ),
    "share direction against the time metric": _case(
        "iwf_uk_removal_within_120_minutes",
        "direction lower_is_better contradicts the measure: a share done within a time limit",
        direction="lower_is_better",
    ),
    "share above one": _case(
        "classifier_new_material_adoption",
        "target value 1.5 is a share and must be in [0, 1]",
        target={"value": 1.5},
    ),
    "unknown scope type": _case(
        "ga_company_takedown_p90_24h", "unknown scope type 'planet'", scope={"type": "planet", "value": None}
    ),
    "country not ISO": _case(
        "iwf_uk_removal_within_60_minutes",
        "scope value 'UK' is not an ISO 3166-1 alpha-2 country code",
        scope={"value": "UK"},
    ),
    "unknown stakeholder type": _case(
        "livestream_detection_adoption",
        "scope value 'platform' is not a stakeholder type",
        scope={"value": "platform"},
    ),
    "stakeholder type that does not report the metric": _case(
        "ga_company_hash_matching_adoption",
        "scope value 'hotline' does not report metric 'co_capability_hash_matching'",
        scope={"value": "hotline"},
    ),
}


def _file_of(code: str) -> str:
    """The shipped file that holds ``code``."""
    return next(p.name for p in (DATA / "targets").glob("*.yaml") if f"code: {code}\n" in p.read_text())


@pytest.mark.parametrize("case", sorted(BAD_TARGETS))
def test_broken_target_fails_with_file_code_and_reason(
    data_copy: Path, catalogue: Catalogue, case: str
) -> None:
    edit, code, reason = BAD_TARGETS[case]
    file_name = _file_of(code)
    _edit_targets(data_copy, edit)
    with pytest.raises(CatalogueError) as info:
        load_targets(data_copy, catalogue)
    assert any(
        file_name in problem and f"target {code!r}" in problem and reason in problem
        for problem in info.value.problems
    ), info.value.problems


def test_every_problem_is_reported_at_once_and_check_exits_1(data_copy: Path, catalogue: Catalogue) -> None:
    for edit, *_ in BAD_TARGETS.values():
        _edit_targets(data_copy, edit)
    with pytest.raises(CatalogueError) as info:
        load_targets(data_copy, catalogue)
    assert len(info.value.problems) >= len(BAD_TARGETS)

    result = subprocess.run(
        [HUB, "catalogue", "check", "--data-dir", str(data_copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for _, code, reason in BAD_TARGETS.values():
        line = next((x for x in result.stderr.splitlines() if f"target {code!r}" in x and reason in x), "")
        assert _file_of(code) in line, (code, reason, result.stderr)


def test_a_code_used_in_two_files_is_refused_naming_both(data_copy: Path, catalogue: Catalogue) -> None:
    def duplicate(docs: Docs) -> None:
        docs[OTHER_FILE]["targets"].append(dict(_entry(docs, "ga_items_scanned_growth")))

    _edit_targets(data_copy, duplicate)
    with pytest.raises(CatalogueError) as info:
        load_targets(data_copy, catalogue)
    [problem] = info.value.problems
    assert f"{GA_FILE}: target 'ga_items_scanned_growth'" in problem  # files are read in name order
    assert "duplicate code 'ga_items_scanned_growth' (first in " in problem and OTHER_FILE in problem


MORE_BAD: dict[str, Case] = {
    "unknown kind": _case("ga_icse_victims_growth", "Input tag 'wish'", kind="wish"),
    "unknown field": _case("ga_icse_victims_growth", "Extra inputs are not permitted", colour="red"),
    "growth with a target value": _case(
        "ga_icse_victims_growth", "a growth target's goal is its annual_rate", target={"value": 50000}
    ),
    "growth rate against the direction": _case(
        "ga_items_scanned_growth",
        "annual_rate -0.1 does not move in the target's direction",
        parameters={"annual_rate": -0.1},
    ),
    "observed baseline with a value": _case(
        "ga_icse_countries_connected",
        "an observed baseline is computed from the data",
        baseline={"value": 60},
    ),
    "published baseline without source": _case(
        "ga_hotline_removal_within_72h",
        "a published baseline needs its value and its source",
        baseline={"source": None},
    ),
    "bad baseline period": _case(
        "ga_companies_reporting", "baseline: period", baseline={"period": "2021-13"}
    ),
    "baseline period the metric is not reported by": _case(
        "ga_icse_countries_connected",
        "baseline period 2021-06 is a month but metric 'le_countries_connected_icse'",
        baseline={"period": "2021-06"},
    ),
    "target already met by the baseline": _case(
        "ga_hotline_removal_within_72h",
        "target value 0.5 is already met by the baseline value 0.62",
        target={"value": 0.5},
    ),
    "country basis on a metric without countries": _case(
        "ga_company_hash_matching_adoption",
        "scope basis country_dimension: metric 'co_capability_hash_matching' has no country dimension",
        scope={"type": "country", "value": "GB", "basis": "country_dimension"},
    ),
    "population and scope disagree": _case(
        "ga_companies_reporting",
        "scope 'company' and population 'hotline' differ",
        parameters={"population": {"stakeholder_type": "hotline"}},
    ),
    "neutral direction": _case(
        "ga_icse_countries_connected",
        "direction 'neutral' must be higher_is_better or lower_is_better",
        direction="neutral",
    ),
    "alliance scope with a value": _case(
        "ga_items_scanned_growth", "an alliance scope takes no value (got 'GB')", scope={"value": "GB"}
    ),
    "organisation rule when services are counted": _case(
        "grooming_detection_adoption",
        "organisation_rule is needed when organisations are counted, and only then",
        parameters={"organisation_rule": "any_service"},
    ),
}


@pytest.mark.parametrize("case", sorted(MORE_BAD))
def test_more_broken_targets_are_refused(data_copy: Path, catalogue: Catalogue, case: str) -> None:
    edit, code, reason = MORE_BAD[case]
    _edit_targets(data_copy, edit)
    with pytest.raises(CatalogueError) as info:
        load_targets(data_copy, catalogue)
    assert any(
        _file_of(code) in problem and f"target {code!r}" in problem and reason in problem
        for problem in info.value.problems
    ), info.value.problems


def test_missing_or_unreadable_target_files_are_reported(data_copy: Path, catalogue: Catalogue) -> None:
    (data_copy / "targets" / GA_FILE).write_text("targets: [unclosed\n")
    (data_copy / "targets" / OTHER_FILE).write_text("- just a list\n")
    with pytest.raises(CatalogueError) as info:
        load_targets(data_copy, catalogue)
    message = "\n".join(info.value.problems)
    assert f"{GA_FILE}: not valid YAML" in message
    assert f"{OTHER_FILE}: expected a mapping with a 'targets' list" in message
    shutil.rmtree(data_copy / "targets")
    with pytest.raises(CatalogueError, match="no target files"):
        load_targets(data_copy, catalogue)


def test_check_counts_the_targets(catalogue: Catalogue) -> None:
    result = subprocess.run([HUB, "catalogue", "check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{len(load_targets(DATA, catalogue))} targets, " in result.stdout
    assert "reconciliation flows, 5 disclosure classes: OK" in result.stdout


def test_check_reports_broken_flows_and_policy_in_one_pass(tmp_path: Path) -> None:
    data_copy = tmp_path / "data"
    shutil.copytree(DATA, data_copy)
    (data_copy / "disclosure.yaml").write_text("classes: {people: {threshold: -1}}\n")
    flows = data_copy / "reconciliation" / "flows.yaml"
    flows.write_text(
        flows.read_text().replace("metric: co_reports_to_authority", "metric: no_such_metric", 1)
    )
    result = subprocess.run(
        [HUB, "catalogue", "check", "--data-dir", str(data_copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "disclosure.yaml" in result.stderr and "no_such_metric" in result.stderr
    assert "OK" not in result.stdout


def test_targets_list_prints_the_stored_targets(cli_env: dict[str, str], catalogue: Catalogue) -> None:
    result = subprocess.run(
        [HUB, "targets", "list"], env=cli_env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == [
        "code",
        "kind",
        "metric",
        "scope",
        "baseline",
        "target_value",
        "target_year",
    ]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert len(rows) == len(load_targets(DATA, catalogue))
    assert rows["ga_icse_victims_growth"][1:] == [
        "growth",
        "le_victims_identified_icse_cumulative",
        "alliance",
        "2021 observed",
        "0.1",
        "2030",
    ]
    assert rows["iwf_uk_removal_within_60_minutes"][3:5] == ["country:GB", "2015 0.38 (published)"]
