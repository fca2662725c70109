"""The disclosure audit: can a reader work a suppressed cell out from what a release publishes?

Every published table is a set of linear equations (a total is the sum of its parts) and
inequalities (a total is at least the sum of the parts it lists). For each suppressed
sensitive cell the audit solves two linear programmes (scipy's HiGHS): the smallest and the
largest value the cell can take given every published value, every value an earlier release
published that has not changed, and non-negative unknowns. A cell whose range is exact or
narrower than the policy's protection is reported. hub.disclosure uses the same solver to
choose complementary suppressions; the tests use the audit to prove them sufficient.

The linear programme is the continuous relaxation: counts are integers, so the true range
can be a little narrower than the one found (limit stated in docs/disclosure.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from hub.figures import KEY_COLUMNS

if TYPE_CHECKING:
    from hub.disclosure import DisclosurePolicy

SENSITIVE_REASONS = ("primary", "dominance")
_TOLERANCE = 1e-6

_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_codes(codes: list[np.ndarray]) -> np.ndarray:
    """One 64-bit key per row from integer codes of the key columns (vectorised, no strings)."""
    result = np.zeros(len(codes[0]) if codes else 0, dtype=np.uint64)
    for position, column in enumerate(codes):
        salt = np.uint64(((position + 1) * _GOLDEN) % 2**64)
        result = _splitmix(result ^ (column.astype(np.int64).view(np.uint64) + salt))
    return result


def key_positions(target: pd.DataFrame, source: pd.DataFrame) -> np.ndarray:
    """For each row of ``source``, the position of the row of ``target`` with the same key
    (KEY_COLUMNS), or -1. Both are factorised together so equal strings get equal codes."""
    both = pd.concat([target.loc[:, list(KEY_COLUMNS)], source.loc[:, list(KEY_COLUMNS)]], ignore_index=True)
    codes = [pd.factorize(both[name])[0] for name in KEY_COLUMNS]
    hashes = hash_codes(codes)
    index = pd.Index(hashes[: len(target)])
    if not index.is_unique:
        raise ValueError("the target table has two rows with the same key")
    return np.asarray(index.get_indexer(hashes[len(target) :]), dtype=np.int64)


@dataclass(frozen=True)
class Constraints:
    """The linear structure of a protected table.

    ``cells``: one row per cell of the protected table (KEY_COLUMNS, value, disclosure_class,
    suppression_reason, known: published with this value by an earlier release, threshold:
    the primary threshold of the cell's class). Equation ``e`` is
    ``sum(coef * value of cell) == 0`` when ``equality[e]``, else ``>= 0``: coef +1 for the
    total, -1 for each part.
    """

    cells: pd.DataFrame
    eq: np.ndarray
    cell: np.ndarray
    coef: np.ndarray
    equality: np.ndarray

    @property
    def equations(self) -> int:
        return len(self.equality)


@dataclass(frozen=True)
class AuditResult:
    """Cells checked and the ones a reader could narrow too far (empty when protected)."""

    checked: int
    failures: pd.DataFrame = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.failures.empty


def feasible_ranges(
    constraints: Constraints, known_values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smallest and largest value of each target cell given the constraints.

    ``known_values``: per cell, the value a reader knows (NaN = unknown, any value >= 0).
    Returns (lower, upper, component): upper is inf when unbounded; targets in no equation
    get [0, inf). Unknown cells are grouped into connected components (cells linked by an
    equation) so each linear programme only holds the cells that matter.
    """
    n_cells = len(known_values)
    n_eq = constraints.equations
    lower = np.zeros(len(targets))
    upper = np.full(len(targets), np.inf)
    component_of_target = np.full(len(targets), -1, dtype=np.int64)
    if len(targets) == 0 or n_eq == 0:
        return lower, upper, component_of_target
    unknown = np.isnan(known_values)
    term_unknown = unknown[constraints.cell]
    graph = sparse.coo_matrix(
        (
            np.ones(int(term_unknown.sum())),
            (constraints.cell[term_unknown], n_cells + constraints.eq[term_unknown]),
        ),
        shape=(n_cells + n_eq, n_cells + n_eq),
    )
    _, labels = connected_components(graph, directed=False)
    known_filled = np.where(unknown, 0.0, known_values)
    term_known_part = np.where(term_unknown, 0.0, constraints.coef * known_filled[constraints.cell])
    constant = np.bincount(constraints.eq, weights=term_known_part, minlength=n_eq)
    eq_label = labels[n_cells:]
    has_unknown = np.bincount(constraints.eq, weights=term_unknown.astype(float), minlength=n_eq) > 0
    target_labels = labels[targets]
    in_equation = np.zeros(n_cells, dtype=bool)
    in_equation[constraints.cell[term_unknown]] = True
    for label in np.unique(target_labels[in_equation[targets]]):
        eq_ids = np.flatnonzero((eq_label == label) & has_unknown)
        var_cells = np.flatnonzero((labels[:n_cells] == label) & unknown)
        local = pd.Series(np.arange(len(var_cells)), index=var_cells)
        term_mask = np.isin(constraints.eq, eq_ids) & term_unknown
        row_of = pd.Series(np.arange(len(eq_ids)), index=eq_ids)
        rows = row_of.loc[constraints.eq[term_mask]].to_numpy()
        cols = local.loc[constraints.cell[term_mask]].to_numpy()
        matrix = sparse.csr_matrix(
            (constraints.coef[term_mask], (rows, cols)), shape=(len(eq_ids), len(var_cells))
        )
        is_equal = constraints.equality[eq_ids]
        rhs = -constant[eq_ids]
        a_eq, b_eq = matrix[is_equal], rhs[is_equal]
        a_ub, b_ub = -matrix[~is_equal], -rhs[~is_equal]
        if matrix.shape[0] * matrix.shape[1] <= 40_000:  # small: dense is parsed faster
            a_eq, a_ub = a_eq.toarray(), a_ub.toarray()
        for index in np.flatnonzero(target_labels == label):
            objective = np.zeros(len(var_cells))
            objective[local.loc[targets[index]]] = 1.0
            bounds: list[float] = []
            for sign in (1.0, -1.0):
                solved = linprog(
                    sign * objective,
                    A_ub=a_ub if a_ub.shape[0] else None,
                    b_ub=b_ub if a_ub.shape[0] else None,
                    A_eq=a_eq if a_eq.shape[0] else None,
                    b_eq=b_eq if a_eq.shape[0] else None,
                    bounds=(0, None),
                    method="highs",
                )
                if solved.status == 3:  # unbounded: only the maximum can be (cells are >= 0)
                    bounds.append(-sign * np.inf)
                elif solved.status == 0:
                    bounds.append(sign * float(solved.fun))
                else:
                    raise RuntimeError(f"disclosure audit: linear programme failed ({solved.message})")
            lower[index], upper[index] = max(bounds[0], 0.0), bounds[1]
            component_of_target[index] = label
    return lower, upper, component_of_target


def required_bounds(
    reasons: np.ndarray, values: np.ndarray, thresholds: np.ndarray, policy: DisclosurePolicy
) -> tuple[np.ndarray, np.ndarray]:
    """The range a reader's knowledge must at least span for each sensitive cell: the lower
    bound may be at most the first, the upper bound must be at least the second."""
    protection = policy.protection
    need_low = values.astype(float).copy()
    need_high = values.astype(float).copy()
    primary = reasons == "primary"
    need_low[primary] = values[primary] * (1 - protection.primary_lower_fraction)
    need_high[primary] = np.maximum(thresholds[primary], values[primary])
    dominance = reasons == "dominance"
    need_low[dominance] = values[dominance] * (1 - protection.dominance_fraction)
    need_high[dominance] = values[dominance] * (1 + protection.dominance_fraction)
    return need_low, need_high


def check_cells(
    constraints: Constraints,
    known_values: np.ndarray,
    targets: np.ndarray,
    policy: DisclosurePolicy,
) -> pd.DataFrame:
    """Targets a reader can narrow below the required range, with their feasible range."""
    cells = constraints.cells
    values = cells["value"].to_numpy(dtype=float)[targets]
    reasons = cells["suppression_reason"].to_numpy(dtype=object)[targets]
    thresholds = cells["threshold"].to_numpy(dtype=float)[targets]
    lower, upper, component = feasible_ranges(constraints, known_values, targets)
    need_low, need_high = required_bounds(reasons, values, thresholds, policy)
    exact = upper - lower <= _TOLERANCE
    narrow = (lower > need_low + _TOLERANCE) | (upper < need_high - _TOLERANCE)
    failing = exact | narrow
    result = cells.iloc[targets[failing]].loc[:, [*KEY_COLUMNS, "value", "suppression_reason"]].copy()
    result["lower"] = lower[failing]
    result["upper"] = upper[failing]
    result["required_lower"] = need_low[failing]
    result["required_upper"] = need_high[failing]
    result["position"] = targets[failing]
    result["component"] = component[failing]
    return result.reset_index(drop=True)


def audit(
    public: pd.DataFrame,
    constraints: Constraints,
    policy: DisclosurePolicy,
    *,
    reasons: tuple[str, ...] = SENSITIVE_REASONS,
) -> AuditResult:
    """Check a published table (hub.disclosure.public_view of a release) against the
    constraints of its protected table (hub.disclosure.build_constraints).

    A cell counts as known when ``public`` shows it unsuppressed with a value, or when an
    earlier release published it with the same value (``constraints.cells.known``). Every
    unknown cell whose protected reason is in ``reasons`` must keep the policy's range.
    """
    cells = constraints.cells
    known_values = np.full(len(cells), np.nan)
    previous_known = cells["known"].to_numpy(dtype=bool)
    known_values[previous_known] = cells["value"].to_numpy(dtype=float)[previous_known]
    positions = key_positions(cells, public)
    shown = (positions >= 0) & ~public["suppressed"].to_numpy(dtype=bool) & public["value"].notna().to_numpy()
    known_values[positions[shown]] = public["value"].to_numpy(dtype=float)[shown]
    sensitive = cells["suppression_reason"].isin(list(reasons)).to_numpy() & np.isnan(known_values)
    targets = np.flatnonzero(sensitive)
    failures = check_cells(constraints, known_values, targets, policy)
    return AuditResult(checked=len(targets), failures=failures)
