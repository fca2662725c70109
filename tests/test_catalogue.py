"""The catalogue loads, says what it must, and a broken one fails with file, entry and reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hub.catalogue import Catalogue, load_catalogue_uncached
from hub.categories import UnmappedCategory
from hub.datafiles import safe_load
from hub.errors import CatalogueError
from hub.settings import REPO_ROOT

DATA = REPO_ROOT / "data"
HUB = str(REPO_ROOT / ".venv" / "bin" / "hub")


def test_catalogue_has_at_least_30_metrics_across_stakeholders(catalogue: Catalogue) -> None:
    assert len(catalogue.metrics) >= 30
    for stakeholder in ("company", "hotline", "clearinghouse", "law_enforcement"):
        assert len(catalogue.metrics_for(stakeholder)) >= 4, stakeholder


def test_every_metric_says_what_it_counts(catalogue: Catalogue) -> None:
    for metric in catalogue.metrics.values():
        assert len(metric.definition) >= 20
        assert metric.unit in {"count", "hours", "share", "boolean"}
        if metric.unit == "hours":
            assert metric.clock is not None, metric.code


def test_takedown_time_is_a_distribution_on_the_bucket_scheme(catalogue: Catalogue) -> None:
    for code in ("co_takedown_time", "ht_notice_to_removal_time"):
        metric = catalogue.metric(code)
        assert metric.combination == "distribution"
        assert "time_bucket" in metric.dimensions


@pytest.mark.parametrize("hours", [1, 2, 24, 48, 72, 144, 168, 1008])
def test_published_thresholds_are_bucket_edges(catalogue: Catalogue, hours: int) -> None:
    assert hours * 60 in catalogue.buckets.edges_minutes


def test_bucket_lookup(catalogue: Catalogue) -> None:
    scheme = catalogue.buckets
    assert scheme.bucket_for(0).code == "0-1m"
    assert scheme.bucket_for(59.9).code == "30m-1h"
    assert scheme.bucket_for(60).code == "1h-2h"
    assert scheme.bucket_for(24 * 60).code == "1d-2d"
    assert scheme.bucket_for(10**9).code == "90d+"
    assert scheme.bucket_for(None).code == "not_actioned"
    assert scheme.codes[-1] == "not_actioned"
    assert len(set(scheme.codes)) == len(scheme.codes)


def test_crosswalks_map_known_labels_and_refuse_unknown(catalogue: Catalogue) -> None:
    categories = catalogue.categories
    for scheme in ("uk_abc", "ncmec_incident", "eu_dsa_minors", "platform_labels"):
        assert scheme in categories.crosswalks
    assert categories.map("ncmec_incident", "Online Enticement of Children") is not None
    assert categories.map("platform_labels", "Child Endangerment: Sexual Exploitation") is not None
    assert categories.map("uk_abc", "  category   a ") == categories.map("uk_abc", "Category A")
    with pytest.raises(UnmappedCategory, match="unmapped category 'Category Z'"):
        categories.map("uk_abc", "Category Z")
    with pytest.raises(UnmappedCategory, match="no crosswalk"):
        categories.map("klingon", "x")


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA / "catalogue", target / "catalogue")
    shutil.copytree(DATA / "categories", target / "categories")
    return target


def _edit_metrics(data_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = data_dir / "catalogue" / "metrics.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["metrics"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


BAD_EDITS = {
    "duplicate code": (lambda m: m.append(dict(m[0])), "duplicate code"),
    "unknown unit": (lambda m: m[1].update(unit="kilograms"), "unknown unit 'kilograms'"),
    "unknown combination": (
        lambda m: m[2].update(combination="average_of_averages"),
        "unknown combination rule 'average_of_averages'",
    ),
    "unknown dimension": (
        lambda m: m[3].update(dimensions=[*m[3]["dimensions"], "shoe_size"]),
        "dimension 'shoe_size' is not in the dimension list",
    ),
    "missing definition": (lambda m: m[4].pop("definition"), "field 'definition'"),
    "dangling numerator": (
        lambda m: m.append(
            {
                **m[0],
                "code": "co_bad_ratio",
                "unit": "share",
                "combination": "ratio_of_sums",
                "numerator": "co_nothing",
                "denominator": m[0]["code"],
            }
        ),
        "numerator 'co_nothing' is not a metric",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_broken_catalogue_fails_with_file_entry_and_reason(data_copy: Path, case: str) -> None:
    edit, reason = BAD_EDITS[case]
    _edit_metrics(data_copy, edit)
    with pytest.raises(CatalogueError) as info:
        load_catalogue_uncached(data_copy)
    message = "\n".join(info.value.problems)
    assert reason in message
    assert "metrics.yaml" in message and "metric '" in message

    result = subprocess.run(
        [HUB, "catalogue", "check", "--data-dir", str(data_copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert reason in result.stderr and "metrics.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_threshold_that_is_not_an_edge_is_refused(data_copy: Path) -> None:
    path = data_copy / "catalogue" / "buckets.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["edges_minutes"] = [e for e in doc["edges_minutes"] if e != 4320]
    doc["required_thresholds_minutes"] = [e for e in doc["required_thresholds_minutes"] if e != 4320]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogueError, match="3d must be a bucket edge"):
        load_catalogue_uncached(data_copy)


def test_crosswalk_to_unknown_category_is_refused(data_copy: Path) -> None:
    path = data_copy / "categories" / "crosswalks" / "uk_abc.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["mappings"][0]["target"] = "no_such_category"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogueError, match="unknown harmonised category 'no_such_category'"):
        load_catalogue_uncached(data_copy)


def test_invalid_yaml_is_reported_not_crashed(data_copy: Path) -> None:
    (data_copy / "catalogue" / "metrics.yaml").write_text("metrics: [unclosed\n")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue_uncached(data_copy)


def test_check_command_passes_on_the_shipped_catalogue() -> None:
    result = subprocess.run([HUB, "catalogue", "check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_libyaml_reads_every_data_file_as_the_python_parser_does() -> None:
    """hub.datafiles.safe_load uses libyaml's parser for speed: the same documents come out."""
    files = sorted((REPO_ROOT / "data").rglob("*.yaml"))
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert safe_load(text) == yaml.safe_load(text), path
    assert yaml.__with_libyaml__  # else the hub silently falls back to the slow parser
