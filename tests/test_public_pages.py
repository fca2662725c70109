"""The public pages on published releases: the read layer (hub.published), the page figures
(hub.public_views), the URL filters (dashboards.routing), the downloads (hub.tabular), and
the pages over HTTP on a real database: only published releases, nothing hidden, no leak."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pandas as pd
import pytest
from dashpages import page_callback
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from test_publication import ANONYMOUS, DATA, _submit, alliance  # noqa: F401 - alliance is a fixture

from dashboards import routing
from dashboards.app import create_app
from hub import public_views as views
from hub import tabular
from hub.approval import approve
from hub.catalogue import Catalogue
from hub.models import Submission, User
from hub.publication import build_protected_release
from hub.published import ReleaseData, ReleaseSummary, breakdown_mask
from hub.releases import publish_release, withdraw_release
from hub.settings import Settings
from hub.vocab import DIMENSIONS, TOTAL

SUMMARY = ReleaseSummary(number=7, title="Test", published_at=None, previous=None, content_checksum="abc")


def _cell(metric: str, period: str, value: float, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": metric,
        "period": period,
        "period_kind": "year",
        "level": "alliance",
        "entity": "ALL",
        **dict.fromkeys(DIMENSIONS, TOTAL),
        "statistic": "value",
        "param": -1.0,
        "value": value,
        "lower": math.nan,
        "upper": math.nan,
        "coverage": 3,
        "event_count": math.nan,
        "yoy_change": math.nan,
        "unit": "count",
        "provisional": False,
        "suppressed": False,
        "suppression_reason": "",
        "display": f"{value:.0f}",
    }
    row.update(extra)
    return row


def _data(rows: list[dict[str, Any]], **tables: pd.DataFrame) -> ReleaseData:
    return ReleaseData(SUMMARY, {"indicators": pd.DataFrame(rows), **tables})


# --- the read layer ---------------------------------------------------------------------------


def test_cells_keep_totals_apart_from_breakdowns() -> None:
    data = _data(
        [
            _cell("le_victims_identified", "2024", 50),
            _cell("le_victims_identified", "2024", 30, country="DE"),
            _cell(
                "le_victims_identified",
                "2024",
                math.nan,
                country="FR",
                suppressed=True,
                suppression_reason="primary",
                display="<10",
            ),
            _cell("le_victims_identified", "2024", 20, country="DE", category="csam"),
        ]
    )
    totals = data.cells("le_victims_identified")
    assert list(totals["value"]) == [50]
    by_country = data.cells("le_victims_identified", vary=("country",))
    assert sorted(by_country["country"]) == ["DE", "FR"]
    assert by_country.loc[by_country["country"] == "FR", "display"].item() == "<10"
    # fixing a dimension to its total is the same as not naming it
    assert list(data.cells("le_victims_identified", fixed={"country": TOTAL})["value"]) == [50]
    assert list(
        data.cells("le_victims_identified", fixed={"country": "DE"}, vary=("category",))["value"]
    ) == [20]
    assert data.cells("no_such_metric").empty


def test_every_accessor_returns_a_new_frame() -> None:
    data = _data([_cell("ht_notices_sent", "2024", 100)], targets=pd.DataFrame({"code": ["a"]}))
    first = data.cells("ht_notices_sent")
    first.loc[0, "value"] = -1
    assert data.cells("ht_notices_sent")["value"].item() == 100
    table = data.table("targets")
    table.loc[0, "code"] = "changed"
    assert data.table("targets")["code"].item() == "a"


def test_breakdown_mask_refuses_unknown_dimensions() -> None:
    assert breakdown_mask(()) == 0
    assert breakdown_mask(("country", "country")) == 1
    with pytest.raises(ValueError, match="unknown dimension"):
        breakdown_mask(("planet",))


# --- page figures -----------------------------------------------------------------------------


def test_headline_takes_the_latest_year_and_keeps_a_hidden_mark() -> None:
    data = _data(
        [
            _cell("le_victims_identified", "2023", 40),
            _cell(
                "le_victims_identified",
                "2024",
                math.nan,
                suppressed=True,
                suppression_reason="primary",
                display="<10",
            ),
            _cell("ht_notices_sent", "2024", 900, yoy_change=0.125),
        ]
    )
    found = {h.metric: h for h in views.headlines(data)}
    victims = found["le_victims_identified"]
    assert victims.latest is not None
    assert (victims.latest.period, victims.latest.display, victims.latest.suppressed) == ("2024", "<10", True)
    assert math.isnan(victims.latest.value)
    assert [f.period for f in victims.series] == ["2023", "2024"]
    assert found["ht_notices_sent"].latest is not None and found["ht_notices_sent"].latest.yoy_change == 0.125
    assert found["co_items_actioned"].latest is None


def test_required_path_compounds_from_the_baseline() -> None:
    growth = views.required_path(2020, 100.0, 2023, 0.0, 0.10)
    assert list(growth["year"]) == [2020, 2021, 2022, 2023]
    assert growth["value"].round(6).tolist() == [100.0, 110.0, 121.0, 133.1]
    # a threshold: the compound rate from 0.62 in 2017 that reaches 0.9 in 2030
    threshold = views.required_path(2017, 0.62, 2030, 0.9, None)
    assert threshold["value"].iloc[0] == pytest.approx(0.62)
    assert threshold["value"].iloc[-1] == pytest.approx(0.9)
    ratio = threshold["value"].iloc[1] / threshold["value"].iloc[0]
    assert ratio == pytest.approx((0.9 / 0.62) ** (1 / 13))
    # from zero there is no rate: a straight line
    assert views.required_path(2020, 0.0, 2022, 10.0, None)["value"].tolist() == [0.0, 5.0, 10.0]


def test_growth_path_starts_at_the_first_shown_year() -> None:
    series = pd.DataFrame({"period": ["2021", "2022", "2023"], "value": [math.nan, 200.0, 230.0]})
    path = views.growth_path(series)
    assert path["period"].tolist() == ["2022", "2023"]
    assert path["value"].tolist() == pytest.approx([200.0, 220.0])


def test_takedown_histogram_follows_the_bucket_scheme(catalogue: Catalogue) -> None:
    metric = "ht_notice_to_removal_time"
    codes = catalogue.buckets.codes
    rows = [
        _cell(metric, "2024", 10.0 * (i + 1), statistic="events", time_bucket=code)
        for i, code in enumerate(codes)
    ]
    rows.reverse()  # stored in any order
    rows += [
        _cell(metric, "2024", sum(10.0 * (i + 1) for i in range(len(codes))), statistic="events"),
        _cell(metric, "2024", 0.75, statistic="share_within", param=72.0, unit="share"),
        _cell(
            metric,
            "2024",
            0.5,
            statistic="share_within",
            param=24.0,
            unit="share",
            suppressed=True,
            suppression_reason="min_events",
            display="x",
        ),
        _cell(metric, "2024", 30.0, statistic="percentile", param=0.5, lower=24.0, upper=48.0, unit="hours"),
    ]
    rows[-2]["value"] = math.nan
    data = _data(rows)
    result = views.takedown(data, catalogue.buckets, metric, "2024")
    assert result.histogram["time_bucket"].tolist() == list(codes)
    shares = dict(result.shares)
    assert shares[72.0] is not None and shares[72.0].value == 0.75
    assert shares[24.0] is not None and shares[24.0].suppressed and shares[24.0].display == "x"
    assert shares[168.0] is None
    median = dict(result.quantiles)[0.5]
    assert median is not None and (median.value, median.lower, median.upper) == (30.0, 24.0, 48.0)
    assert views.takedown_periods(data, metric) == ["2024"]
    assert result.trend.loc[0, "median"] == 30.0


def test_target_table_orders_by_status_and_filters_by_scope() -> None:
    targets = pd.DataFrame(
        {
            "code": ["b", "a", "c"],
            "status": ["insufficient_data", "deterioration", "achieved"],
            "scope": ["alliance", "country GB (country_dimension)", "alliance"],
        }
    )
    data = _data([], targets=targets)
    assert views.target_table(data)["code"].tolist() == ["c", "a", "b"]
    assert views.target_table(data, "country")["code"].tolist() == ["a"]


# --- URL filters --------------------------------------------------------------------------------


def test_urls_keep_only_known_well_formed_filters() -> None:
    route = routing.parse("/takedown/", "?release=2&metric=co_takedown_time&evil=1&period=<script>&by=a%20b")
    assert route.path == "/takedown"
    assert route.params == {"release": "2", "metric": "co_takedown_time"}
    assert routing.parse(None, None) == routing.Route("/", {})
    assert routing.release_number({"release": "12"}) == 12
    assert routing.release_number({"release": "x"}) is None
    assert routing.release_number({"release": "9" * 12}) is None


def test_a_filter_change_rewrites_the_query_string() -> None:
    ids = [
        {"type": "filter", "name": "release"},
        {"type": "filter", "name": "period"},
        {"type": "filter", "name": "unknown"},
    ]
    search = routing.search_for(ids, ["3", "2024", "x"], "?metric=co_takedown_time&period=2023")
    assert search == "?release=3&metric=co_takedown_time&period=2024"
    assert routing.search_for([{"type": "filter", "name": "period"}], [None], "?period=2023") == ""
    assert routing.search_for([{"type": "filter", "name": "period"}], ["bad value"], "?period=2023") == ""


# --- downloads -----------------------------------------------------------------------------------


def test_csv_neutralises_formulas_and_keeps_numbers() -> None:
    frame = pd.DataFrame(
        {"text": ["=1+2", "+x", "-y", "@z", "\tt", 'say "hi", twice'], "n": [-1.5, 2, 3, 4, 5, 6]}
    )
    body = tabular.to_csv(frame).decode("utf-8")
    lines = body.split("\r\n")
    assert lines[0] == '"text","n"' and lines[-1] == "" and "\n" not in body.replace("\r\n", "")
    assert lines[1] == '"\'=1+2",-1.5'  # text quoted, numbers left as numbers
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert [row[0] for row in rows[2:6]] == ["'+x", "'-y", "'@z", "'\tt"]
    assert rows[6] == ['say "hi", twice', "6"]  # quotes doubled inside, the comma kept
    back = pd.read_excel(io.BytesIO(tabular.to_xlsx(frame)))
    assert back["text"].tolist()[0] == "'=1+2" and back["n"].tolist()[0] == -1.5


def test_json_has_nulls_not_nan() -> None:
    records = json.loads(tabular.to_json(pd.DataFrame({"a": [1.0, math.nan], "b": ["x", None]})))
    assert records == [{"a": 1.0, "b": "x"}, {"a": None, "b": None}]


def test_xlsx_refuses_a_table_larger_than_a_sheet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "XLSX_MAX_ROWS", 2)
    with pytest.raises(tabular.TooLargeForFormat, match="do not fit"):
        tabular.to_xlsx(pd.DataFrame({"a": [1, 2, 3]}))


# --- the pages over HTTP -------------------------------------------------------------------------


@pytest.fixture
def releases(
    session: Session,
    catalogue: Catalogue,
    alliance: dict[str, object],
) -> dict[str, int]:
    """Release 1 published; release 2 built from a restatement but not published."""
    sec = alliance["sec"]
    assert isinstance(sec, User)
    first = build_protected_release(
        session, catalogue=catalogue, data_dir=DATA, title="Published", built_by=sec
    )
    publish_release(session, first.number, sec)
    session.commit()
    _submit(
        session,
        catalogue,
        alliance["named_co"],  # type: ignore[arg-type]
        "2025",
        [("co_items_actioned", "2025", 5234, {}), ("co_items_detected_proactively", "2025", 2500, {})],
        reason="late corrections",
    )
    session.commit()
    pending = [s.id for s in session.exec(select(Submission).where(col(Submission.status) == "validated"))]
    approve(session, sec, [i for i in pending if i is not None])
    session.commit()
    second = build_protected_release(session, catalogue=catalogue, data_dir=DATA, title="Draft", built_by=sec)
    session.commit()
    return {"published": first.number, "unpublished": second.number}


@pytest.fixture
def client(loaded_engine: Engine, settings: Settings, releases: dict[str, int]) -> FlaskClient:
    return create_app(loaded_engine, settings).server.test_client()


def test_every_public_page_draws_the_published_release(client: FlaskClient, releases: dict[str, int]) -> None:
    pages = {
        "/": ["Overview", "Children identified as victims", "Targets"],
        "/targets": ["Targets", "Required path"],
        "/takedown": ["Takedown speed"],
        "/victims": ["Victim identification", "<10", "Germany (DE)"],
        "/data": [
            "Data and downloads",
            "Metric definitions",
            f"/download/{releases['published']}/observations.csv",
        ],
        "/sources": ["What the public sources report"],
        "/volumes": ["Volumes", "by year"],
        "/flows": ["Flows"],  # the small alliance has no flow both ends report
        "/countries": ["Countries", "Notice-and-takedown notices sent"],
        "/countries/DE": ["Germany", "Law enforcement", "Victims identified"],
        "/organisations": ["Organisations", "Open Social", "Open Police"],
        "/organisations/open-social": ["Open Social", "Items actioned", "5,000"],
    }
    for path, expected in pages.items():
        text = page_callback(client, path)
        for piece in expected:
            assert piece in text, (path, piece)
        assert "cannot be shown" not in text, path
        assert not set(ANONYMOUS) & set(_words(text)), path


def _words(text: str) -> list[str]:
    return [w.strip('",:{}[]') for w in text.replace("\\", " ").split()]


def test_an_unpublished_release_is_never_shown(client: FlaskClient, releases: dict[str, int]) -> None:
    draft = releases["unpublished"]
    text = page_callback(client, "/data", f"?release={draft}")
    assert f"Release {releases['published']}: Published" in text
    assert "Draft" not in text
    assert client.get(f"/download/{draft}/observations.csv").status_code == 404
    published = client.get(f"/download/{releases['published']}/observations.csv")
    assert published.status_code == 200
    assert published.headers["Content-Type"].startswith("text/csv")
    body = published.data.decode()
    assert "open-social" in body and "5234" not in body
    assert not any(code in body for code in ANONYMOUS)


@pytest.mark.parametrize(
    "path",
    [
        "/download/1/indicators.exe",
        "/download/1/users.csv",
        "/download/999/targets.csv",
        "/download/1/../targets.csv",
    ],
)
def test_downloads_refuse_anything_but_published_tables(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_downloads_in_every_format(client: FlaskClient, releases: dict[str, int]) -> None:
    number = releases["published"]
    as_json = client.get(f"/download/{number}/targets.json")
    assert as_json.status_code == 200 and isinstance(json.loads(as_json.data), list)
    as_xlsx = client.get(f"/download/{number}/targets.xlsx")
    assert as_xlsx.status_code == 200 and as_xlsx.data[:2] == b"PK"
    assert as_xlsx.headers["Content-Disposition"] == f'attachment; filename="release-{number}-targets.xlsx"'


def test_forged_callback_values_fall_back_without_echo(client: FlaskClient) -> None:
    text = page_callback(client, "/takedown", "?release=-1&metric=<img src=x>&period=1900&by=drop table")
    assert "Takedown speed" in text
    assert "<img" not in text and "drop table" not in text and "1900" not in text
    assert "Page not found" in page_callback(client, "/admin")


def test_unknown_pages_are_404_and_known_ones_served(client: FlaskClient) -> None:
    for path in ("/", "/targets", "/takedown", "/victims", "/data", "/sources", "/targets/"):
        assert client.get(path).status_code == 200, path
    for path in ("/nope", "/targets/extra", "/wp-admin"):
        assert client.get(path).status_code == 404, path


def test_no_release_yet_says_so(loaded_engine: Engine, settings: Settings) -> None:
    client = create_app(loaded_engine, settings).server.test_client()
    text = page_callback(client, "/")
    assert routing.NO_RELEASE in text


def test_an_organisation_that_did_not_consent_has_nopage_callback(client: FlaskClient) -> None:
    for code in ANONYMOUS:
        text = page_callback(client, f"/organisations/{code}")
        assert "Organisation not found" in text
        assert "Quiet" not in text  # not even its name
    assert "Page not found" in page_callback(client, "/organisations/Not_A_Slug")
    assert "Page not found" in page_callback(client, "/countries/france")
    assert client.get("/countries/france").status_code == 404
    assert client.get("/countries/FR").status_code == 200


def test_source_breakdown_takes_one_series() -> None:
    observations = pd.DataFrame(
        [
            {
                "organisation": "ncmec",
                "metric": "ch_reports_received",
                "period": "2023",
                **dict.fromkeys(DIMENSIONS, TOTAL),
                "counterpart": provider,
                "notice_source": "provider_report",
                "value": value,
                "display": str(value),
                "suppressed": False,
            }
            for provider, value in (("small", 5.0), ("big", 500.0), ("mid", 50.0))
        ]
        + [
            {
                "organisation": "ncmec",
                "metric": "ch_reports_received",
                "period": "2023",
                **dict.fromkeys(DIMENSIONS, TOTAL),
                "counterpart": "big",
                "category": "csam",
                "value": 1.0,
                "display": "1",
                "suppressed": False,
            }
        ]
    )
    data = _data([], observations=observations)
    found = views.source_breakdown(data, "ncmec", "ch_reports_received", "counterpart", "2023")
    assert found["group"].tolist() == ["big", "mid", "small"]
    assert found["value"].tolist() == [500.0, 50.0, 5.0]
    assert views.source_periods(data, "ncmec", "ch_reports_received", "counterpart") == ["2023"]
    assert views.source_breakdown(data, "other", "ch_reports_received", "counterpart", "2023").empty


def test_sankey_links_leave_out_hidden_totals() -> None:
    rows = pd.DataFrame(
        {"flow": ["a", "b", "c"], "total_sent": [10.0, math.nan, 5.0], "suppressed": [False, True, False]}
    )
    types = {"a": (("hotline", "clearinghouse"), ("company",)), "b": (("company",), ("clearinghouse",))}
    links = views.sankey_links(rows, types)
    assert links.to_dict("records") == [
        {"source": "hotline+clearinghouse", "target": "company", "value": 10.0, "flow": "a"}
    ]


def test_a_withdrawn_release_leaves_the_pages_at_once(
    client: FlaskClient,
    session: Session,
    releases: dict[str, int],
    alliance: dict[str, object],
) -> None:
    assert "Children identified as victims" in page_callback(client, "/")  # drawn and kept
    sec = alliance["sec"]
    assert isinstance(sec, User)
    withdraw_release(session, releases["published"], sec, reason="a figure was wrong")
    session.commit()
    text = page_callback(client, "/")
    assert routing.NO_RELEASE in text and "Children identified as victims" not in text
    assert client.get(f"/download/{releases['published']}/targets.csv").status_code == 404


def test_the_page_cache_is_bounded() -> None:
    pages = routing.PageCache(size=2)
    for key in ("a", "b", "c"):
        pages.put((key,), key)
    assert pages.get(("a",)) is None
    assert pages.get(("b",)) == "b" and pages.get(("c",)) == "c"
