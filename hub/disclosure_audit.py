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
from typing import TYPE_CHECKING, Any

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
    suppression_reason; protection: the range the cell needs, "primary", "dominance" or "";
    known: published with this value by an earlier release; threshold: the primary
    threshold of the cell's class). Equation ``e`` is
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


@dataclass
class _System:
    """The linear system of one connected component: unknown cells and their equations."""

    cells: np.ndarray  # positions of the unknown cells (the LP's variables, in order)
    local: pd.Series  # cell position -> variable index
    a_eq: Any
    b_eq: np.ndarray
    a_ub: Any
    b_ub: np.ndarray


def _systems(constraints: Constraints, known_values: np.ndarray, targets: np.ndarray) -> dict[int, _System]:
    """One system per connected component holding a target: unknown cells linked by an
    equation belong together; everything known is moved to the right-hand side."""
    n_cells = len(known_values)
    n_eq = constraints.equations
    if len(targets) == 0 or n_eq == 0:
        return {}
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
    has_unknown = np.bincount(constraints.eq, weights=term_unknown.astype(float), minlength=n_eq) > 0
    in_equation = np.zeros(n_cells, dtype=bool)
    in_equation[constraints.cell[term_unknown]] = True
    wanted = np.unique(labels[targets[in_equation[targets]]])
    # Terms grouped by component once, instead of a scan of every term per component.
    term_label = labels[n_cells + constraints.eq]
    order = np.argsort(term_label, kind="stable")
    bounds = np.searchsorted(term_label[order], np.stack([wanted, wanted + 1]))
    cell_label = labels[:n_cells]
    systems: dict[int, _System] = {}
    for position, label in enumerate(wanted):
        terms = order[bounds[0, position] : bounds[1, position]]
        terms = terms[term_unknown[terms] & has_unknown[constraints.eq[terms]]]
        eq_ids = np.unique(constraints.eq[terms])
        var_cells = np.unique(constraints.cell[terms])
        var_cells = var_cells[(cell_label[var_cells] == label) & unknown[var_cells]]
        local = pd.Series(np.arange(len(var_cells)), index=var_cells)
        row_of = pd.Series(np.arange(len(eq_ids)), index=eq_ids)
        rows = row_of.loc[constraints.eq[terms]].to_numpy()
        cols = local.loc[constraints.cell[terms]].to_numpy()
        matrix = sparse.csr_matrix(
            (constraints.coef[terms], (rows, cols)), shape=(len(eq_ids), len(var_cells))
        )
        is_equal = constraints.equality[eq_ids]
        rhs = -constant[eq_ids]
        a_eq: Any = matrix[is_equal]
        a_ub: Any = -matrix[~is_equal]
        if matrix.shape[0] * matrix.shape[1] <= 40_000:  # small: dense is parsed faster
            a_eq, a_ub = a_eq.toarray(), a_ub.toarray()
        systems[int(label)] = _System(var_cells, local, a_eq, rhs[is_equal], a_ub, -rhs[~is_equal])
    return systems


def _solve(objective: np.ndarray, system: _System, extra_ub: Any = None, bounds: Any = (0, None)) -> Any:
    """linprog (HiGHS) on ``system``, with optional extra columns (auxiliary variables)."""
    a_eq, a_ub, b_ub = system.a_eq, system.a_ub, system.b_ub
    n_extra = len(objective) - len(system.cells)
    if n_extra:
        a_eq = sparse.hstack(
            [sparse.csr_matrix(a_eq), sparse.csr_matrix((a_eq.shape[0], n_extra))], format="csr"
        )
        a_ub = sparse.vstack(
            [
                sparse.hstack([sparse.csr_matrix(a_ub), sparse.csr_matrix((a_ub.shape[0], n_extra))]),
                sparse.csr_matrix(extra_ub[0]),
            ],
            format="csr",
        )
        b_ub = np.concatenate([b_ub, extra_ub[1]])
    solved = linprog(
        objective,
        A_ub=a_ub if a_ub.shape[0] else None,
        b_ub=b_ub if a_ub.shape[0] else None,
        A_eq=a_eq if a_eq.shape[0] else None,
        b_eq=system.b_eq if a_eq.shape[0] else None,
        bounds=bounds,
        method="highs",
    )
    if solved.status not in (0, 3):
        raise RuntimeError(f"disclosure audit: linear programme failed ({solved.message})")
    return solved


def feasible_ranges(
    constraints: Constraints, known_values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value of each target cell given the constraints (two linear
    programmes per target). ``known_values``: per cell, the value a reader knows (NaN =
    unknown, any value >= 0). Upper is inf when unbounded; a target in no equation gets
    [0, inf)."""
    lower = np.zeros(len(targets))
    upper = np.full(len(targets), np.inf)
    systems = _systems(constraints, known_values, targets)
    for index, target in enumerate(targets):
        system = next((s for s in systems.values() if target in s.local.index), None)
        if system is None:
            continue
        objective = np.zeros(len(system.cells))
        objective[system.local.loc[target]] = 1.0
        low = _solve(objective, system)
        high = _solve(-objective, system)
        lower[index] = max(float(low.fun), 0.0)
        upper[index] = np.inf if high.status == 3 else -float(high.fun)
    return lower, upper


def _push(system: _System, t_var: np.ndarray, need: np.ndarray, weights: np.ndarray, up: bool) -> np.ndarray:
    """One feasible table pushing the targets towards their requirement; the targets' values.

    up: maximise sum(w * y) with y_t <= x_t and 0 <= y_t <= need_t (capped, so bounded);
    down: minimise sum(w * x_t)."""
    n, m = len(system.cells), len(t_var)
    if not up:
        objective = np.zeros(n)
        np.add.at(objective, t_var, weights)
        return np.asarray(_solve(objective, system).x)[t_var]
    rows = np.concatenate([np.arange(m), np.arange(m)])
    cols = np.concatenate([t_var, n + np.arange(m)])
    link = sparse.csr_matrix((np.concatenate([-np.ones(m), np.ones(m)]), (rows, cols)), shape=(m, n + m))
    objective = np.concatenate([np.zeros(n), -weights])
    bounds = [(0.0, None)] * n + [(0.0, max(float(v), 0.0)) for v in need]
    return np.asarray(_solve(objective, system, (link, np.zeros(m)), bounds).x)[t_var]


def unprotected(
    constraints: Constraints,
    known_values: np.ndarray,
    targets: np.ndarray,
    need_low: np.ndarray,
    need_high: np.ndarray,
    *,
    exact: bool = True,
    either_side: np.ndarray | None = None,
) -> np.ndarray:
    """Which targets a reader can confine to a range that does not reach down to
    ``need_low`` or up to ``need_high`` (for the targets marked in ``either_side``: neither
    down to ``need_low`` nor up to ``need_high``, i.e. confined on both sides).

    Per component and direction, one programme pushes every target at once; any feasible
    table it finds is a witness for every target it carries far enough. A target left
    without a witness gets a programme of its own, which decides it exactly (and may witness
    others). Far fewer programmes than a minimum and a maximum per cell, same answer.
    ``exact`` False skips those: a target without a witness counts as failing (safe for
    choosing suppressions, since every target reported protected has a witness).
    """
    short = {True: np.zeros(len(targets), dtype=bool), False: np.zeros(len(targets), dtype=bool)}
    systems = _systems(constraints, known_values, targets)
    position_of = pd.Series(np.arange(len(targets)), index=targets)
    for system in systems.values():
        mine = system.cells[np.isin(system.cells, targets)]
        if not len(mine):
            continue
        t_index = position_of.loc[mine].to_numpy()
        t_var = system.local.loc[mine].to_numpy()
        for up in (True, False):
            need = need_high[t_index] if up else need_low[t_index]

            def met(x: np.ndarray, need: np.ndarray = need, up: bool = up) -> np.ndarray:
                return (x >= need - _TOLERANCE) if up else (x <= need + _TOLERANCE)

            satisfied = met(_push(system, t_var, need, np.ones(len(t_var)), up))
            while not satisfied.all():  # push the ones still without a witness, together
                reached = met(_push(system, t_var, need, (~satisfied).astype(float), up))
                if not (reached & ~satisfied).any():
                    break
                satisfied |= reached
            if not exact:
                short[up][t_index[~satisfied]] = True
                continue
            for k in range(len(t_var)):
                if satisfied[k]:
                    continue
                weights = np.zeros(len(t_var))
                weights[k] = 1.0
                reached = met(_push(system, t_var, need, weights, up))
                short[up][t_index[k]] |= not reached[k]
                satisfied |= reached
    both = short[True] & short[False]
    either = short[True] | short[False]
    if either_side is None:
        return either
    return np.where(either_side, both, either)


def required_bounds(
    reasons: np.ndarray, values: np.ndarray, thresholds: np.ndarray, policy: DisclosurePolicy
) -> tuple[np.ndarray, np.ndarray]:
    """The range a reader's knowledge must at least span for each sensitive cell: the lower
    bound may be at most the first, the upper bound must be at least the second. Both
    differ from the value, so a cell that passes is never determined exactly."""
    protection = policy.protection
    need_low = values.astype(float).copy()
    need_high = values.astype(float) + 1.0
    primary = reasons == "primary"
    need_low[primary] = values[primary] * (1 - protection.primary_lower_fraction)
    need_high[primary] = np.maximum(thresholds[primary], values[primary] + 1.0)
    dominance = reasons == "dominance"
    need_low[dominance] = values[dominance] * (1 - protection.dominance_fraction)
    need_high[dominance] = np.maximum(
        values[dominance] * (1 + protection.dominance_fraction), values[dominance] + 1.0
    )
    return need_low, need_high


def check_cells(
    constraints: Constraints,
    known_values: np.ndarray,
    targets: np.ndarray,
    policy: DisclosurePolicy,
    *,
    ranges: bool = True,
    exact: bool = True,
) -> pd.DataFrame:
    """Targets a reader can narrow below the required range, with their feasible range
    (``ranges``; two more programmes per failing cell, NaN without)."""
    cells = constraints.cells
    values = cells["value"].to_numpy(dtype=float)[targets]
    reasons = cells["protection"].to_numpy(dtype=object)[targets]
    thresholds = cells["threshold"].to_numpy(dtype=float)[targets]
    need_low, need_high = required_bounds(reasons, values, thresholds, policy)
    # a dominance cell is protected when a reader cannot bound it within 10% on BOTH sides
    # (its range may start at a consenting largest contributor's own published figure); a
    # small count of people must stay open on both sides (up to the threshold, down to half)
    failing = unprotected(
        constraints,
        known_values,
        targets,
        need_low,
        need_high,
        exact=exact,
        either_side=reasons == "dominance",
    )
    if ranges:
        lower, upper = feasible_ranges(constraints, known_values, targets[failing])
    else:
        lower = upper = np.full(int(failing.sum()), np.nan)
    result = (
        cells.iloc[targets[failing]]
        .loc[:, [*KEY_COLUMNS, "value", "suppression_reason", "protection"]]
        .copy()
    )
    result["lower"] = lower
    result["upper"] = upper
    result["required_lower"] = need_low[failing]
    result["required_upper"] = need_high[failing]
    result["position"] = targets[failing]
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
    unknown cell whose protection (``constraints.cells.protection``: a small count of
    people, hidden for whatever reason, or a dominance cell) is in ``reasons`` must keep the
    policy's range.
    """
    cells = constraints.cells
    known_values = np.full(len(cells), np.nan)
    previous_known = cells["known"].to_numpy(dtype=bool)
    known_values[previous_known] = cells["value"].to_numpy(dtype=float)[previous_known]
    positions = key_positions(cells, public)
    shown = (positions >= 0) & ~public["suppressed"].to_numpy(dtype=bool) & public["value"].notna().to_numpy()
    known_values[positions[shown]] = public["value"].to_numpy(dtype=float)[shown]
    sensitive = cells["protection"].isin(list(reasons)).to_numpy() & np.isnan(known_values)
    targets = np.flatnonzero(sensitive)
    failures = check_cells(constraints, known_values, targets, policy)
    return AuditResult(checked=len(targets), failures=failures)
