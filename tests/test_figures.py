"""hub.figures: the observation and organisation readers every computed table starts from."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from hub.catalogue import Catalogue
from hub.figures import (
    INDICATOR_COLUMNS,
    OBSERVATION_CODES,
    OBSERVATION_COLUMNS,
    OBSERVATION_TYPES,
    coded_strings,
    conform,
    empty_indicator_frame,
    joint_keys,
    load_observations,
    load_organisations,
    strings_from_codes,
)
from hub.models import Submission
from hub.organisations import OrganisationIn, add_organisation
from hub.periods import parse_period
from hub.store import current_submissions, store_submission
from hub.validation import ObservationIn
from hub.vocab import DIMENSIONS, TOTAL

TODAY = datetime(2026, 3, 1, tzinfo=UTC)


def _store(session: Session, catalogue: Catalogue) -> None:
    acme = add_organisation(
        session, OrganisationIn(code="acme-social", name="Acme", stakeholder_type="company", country="FR")
    )
    hotline = add_organisation(
        session, OrganisationIn(code="hot-line", name="Hotline", stakeholder_type="hotline")
    )
    q1, march = parse_period("2025-Q1"), parse_period("2025-03")
    store_submission(
        session,
        catalogue,
        acme,
        [
            ObservationIn("co_items_actioned", q1, 120),
            ObservationIn("co_items_actioned", q1, 7, {"category": "csam", "content_type": "video"}),
            ObservationIn("co_takedown_time", q1, 3, {"time_bucket": "not_actioned", "country": "NA"}),
            ObservationIn("co_appeals", q1, None),
        ],
        channel="cli",
        scope="2025-Q1",
        actor="test",
        today=TODAY,
    )
    store_submission(
        session,
        catalogue,
        acme,
        [ObservationIn("co_items_actioned", q1, 125)],
        channel="api",
        scope="2025-Q1",
        actor="test",
        today=TODAY,
        supersede_reason="recount",
    )
    store_submission(
        session,
        catalogue,
        hotline,
        [ObservationIn("ht_notices_sent", march, 40, is_estimated=True)],
        channel="upload",
        scope="2025-03",
        actor="test",
        today=TODAY,
    )
    session.commit()


def test_observations_of_the_chosen_submissions_with_who_reported_them(
    session: Session, catalogue: Catalogue
) -> None:
    _store(session, catalogue)
    frame = load_observations(session, current_submissions())
    assert tuple(frame.columns) == OBSERVATION_COLUMNS
    assert frame.dtypes.astype(str).to_dict() == {
        k: "category" if k in OBSERVATION_CODES else pd.Series(dtype=v).dtype.name
        for k, v in OBSERVATION_TYPES.items()
    }
    for name in OBSERVATION_CODES:  # codes as categoricals of the text present, sorted
        assert list(frame[name].cat.categories) == sorted(set(frame[name].astype(str))), name
    rows = {(r.metric, r.organisation, r.category): r for r in frame.itertuples()}
    assert len(frame) == 2  # the first version of acme's 2025-Q1 is superseded
    restated = rows[("co_items_actioned", "acme-social", TOTAL)]
    assert (restated.value, restated.version, restated.supersede_reason, restated.channel) == (
        125,
        2,
        "recount",
        "api",
    )
    assert (restated.period, restated.period_kind, restated.stakeholder_type, restated.org_country) == (
        "2025-Q1",
        "quarter",
        "company",
        "FR",
    )
    estimated = rows[("ht_notices_sent", "hot-line", TOTAL)]
    assert estimated.provisional and estimated.org_country == "" and estimated.period_kind == "month"

    everything = load_observations(session, select(col(Submission.id)))
    assert len(everything) == 6
    video = everything[everything["content_type"] == "video"].iloc[0]
    assert (video["category"], video["value"], video["country"]) == ("csam", 7, TOTAL)
    assert pd.isna(everything[everything["metric"] == "co_appeals"]["value"]).all()  # not available
    censored = everything[everything["time_bucket"] == "not_actioned"].iloc[0]
    assert censored["country"] == "NA"  # Namibia, not a missing value
    assert {d for d in DIMENSIONS if (everything[d] != TOTAL).any()} == {
        "category",
        "content_type",
        "time_bucket",
        "country",
    }


def test_no_submissions_give_an_empty_typed_frame(session: Session, catalogue: Catalogue) -> None:
    _store(session, catalogue)
    frame = load_observations(session, select(col(Submission.id)).where(col(Submission.id) < 0))
    assert frame.empty and tuple(frame.columns) == OBSERVATION_COLUMNS
    assert str(frame["value"].dtype) == "float64"


def test_organisations_with_their_naming_consent(session: Session, catalogue: Catalogue) -> None:
    _store(session, catalogue)
    organisations = load_organisations(session).set_index("organisation")
    assert organisations.loc["acme-social", "org_country"] == "FR"
    assert organisations.loc["hot-line", "org_country"] == ""
    assert not organisations.loc["acme-social", "consents_to_be_named"]


def test_conform_fills_optional_columns_and_orders_them() -> None:
    frame = conform(pd.DataFrame({"metric": ["m"], "value": [1.0], "coverage": [2]}))
    assert tuple(frame.columns) == INDICATOR_COLUMNS
    assert (frame.loc[0, "country"], frame.loc[0, "param"], frame.loc[0, "largest_org"]) == (TOTAL, -1.0, "")
    assert empty_indicator_frame().dtypes.equals(conform(empty_indicator_frame()).dtypes)


def test_conform_refuses_what_cannot_be_typed() -> None:
    with pytest.raises((ValueError, TypeError)):
        conform(pd.DataFrame({"metric": ["m"], "coverage": ["many"]}))


def test_joint_keys_are_equal_exactly_where_the_keys_are_equal_as_text() -> None:
    old = pd.DataFrame(
        {
            "entity": pd.Series(["a", "b", None, "a", "c"], dtype="string"),
            "param": [1.0, 1.0, 2.0, float("nan"), 24.0],
        }
    )
    new = pd.DataFrame(
        {
            "entity": pd.Series(["c", None, "a", "a", "b", "d"], dtype="string"),
            "param": [24.0, 2.0, float("nan"), 1.0, 2.0, 1.0],
        }
    )
    old_keys, new_keys = joint_keys(old, new, ["entity", "param"])

    def text(frame: pd.DataFrame) -> list[tuple[str, str]]:
        return [(str(e), str(p)) for e, p in zip(frame["entity"], frame["param"], strict=True)]

    pairs = text(old) + text(new)
    keys = list(old_keys) + list(new_keys)
    for i, (pair_i, key_i) in enumerate(zip(pairs, keys, strict=True)):
        for pair_j, key_j in zip(pairs[i:], keys[i:], strict=True):
            assert (key_i == key_j) == (pair_i == pair_j), (pair_i, pair_j)
    assert list(new_keys[:4]) == [old_keys[4], old_keys[2], old_keys[3], old_keys[0]]
    assert len({*old_keys, *new_keys}) == 7


def test_coded_strings_are_the_text_as_a_categorical_of_the_values_present_sorted() -> None:
    names = ["b", "a", "é", "b", "unused", "A"]
    codes = np.array([0, 2, -1, 1, 3, 5, 0])
    column = coded_strings(names, codes)
    assert isinstance(column.dtype, pd.CategoricalDtype)
    assert list(column.cat.categories) == ["A", "a", "b", "é"]  # code point order, only present
    assert column.astype("string").equals(strings_from_codes(names, codes))
    assert column.isna().tolist() == [False, False, True, False, False, False, False]
    text = column.astype("string")
    assert column.sort_values(kind="stable").index.equals(text.sort_values(kind="stable").index)


KEY_TEXT = st.one_of(st.none(), st.sampled_from(["", "a", "b", "B", "ab", "é", "_T", "10"]))


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(KEY_TEXT, KEY_TEXT), min_size=0, max_size=12),
    split=st.integers(0, 12),
    coded=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_joint_keys_take_categoricals_as_their_text_and_sort_as_text(
    rows: list[tuple[str | None, str | None]], split: int, coded: tuple[bool, bool, bool, bool]
) -> None:
    """Whatever the columns are (text, or categoricals with categories unused, in any order):
    equal keys exactly where the text is equal; ``ordered`` sorts as the text, missing last."""

    def frame(part: list[tuple[str | None, str | None]], first: bool) -> pd.DataFrame:
        out = pd.DataFrame(
            {name: pd.Series([row[i] for row in part], dtype="string") for i, name in enumerate(("x", "y"))}
        )
        for i, name in enumerate(("x", "y")):
            if coded[i + (0 if first else 2)]:
                present = sorted({v for v in out[name].dropna()}, reverse=first)
                out[name] = pd.Categorical(out[name], categories=[*present, "zz-unused"])
        return out

    first, second = frame(rows[:split], True), frame(rows[split:], False)
    for ordered in (False, True):
        keys_a, keys_b = joint_keys(first, second, ["x", "y"], ordered=ordered)
        keys = [*keys_a, *keys_b]
        assert len(keys) == len(rows)
        for i, row_i in enumerate(rows):
            for j, row_j in enumerate(rows):
                assert (keys[i] == keys[j]) == (row_i == row_j)
                if ordered:
                    sort_i = tuple((v is None, v or "") for v in row_i)
                    sort_j = tuple((v is None, v or "") for v in row_j)
                    assert (keys[i] < keys[j]) == (sort_i < sort_j)


def test_joint_keys_read_text_in_several_chunks_as_one_column() -> None:
    """A table read from Parquet holds its text in one chunk per row group: the codes are
    over the whole column, not per chunk."""
    chunked = pa.chunked_array(
        [pa.array(["b", "a"], pa.large_string()), pa.array(["c", None, "a"], pa.large_string())]
    )
    first = pd.DataFrame({"entity": pd.Series(pd.arrays.ArrowStringArray(chunked))})
    second = pd.DataFrame({"entity": pd.Series(["a", "c", "d", None], dtype="string")})
    keys_a, keys_b = joint_keys(first, second, ["entity"], ordered=True)
    assert keys_a[1] == keys_a[4] == keys_b[0] and keys_a[2] == keys_b[1] and keys_a[3] == keys_b[3]
    assert len({*keys_a, *keys_b}) == 5
    assert keys_a[1] < keys_a[0] < keys_a[2] < keys_b[2] < keys_a[3]  # a < b < c < d < missing
