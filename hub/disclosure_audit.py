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
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize._highspy import _core as _highs
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

    @cached_property
    def index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The terms ordered by cell and by equation, with where each cell's and each
        equation's terms start: (by_cell, cell_ptr, by_eq, eq_ptr)."""
        by_cell = np.argsort(self.cell, kind="stable")
        cell_ptr = np.searchsorted(self.cell[by_cell], np.arange(len(self.cells) + 1))
        by_eq = np.argsort(self.eq, kind="stable")
        eq_ptr = np.searchsorted(self.eq[by_eq], np.arange(self.equations + 1))
        return by_cell, cell_ptr, by_eq, eq_ptr


@dataclass(frozen=True)
class AuditResult:
    """Cells checked and the ones a reader could narrow too far (empty when protected)."""

    checked: int
    failures: pd.DataFrame = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.failures.empty


@dataclass
class _Block:
    """The unknown cells of every connected component holding a target, as ONE linear system.

    Unknown cells linked by an equation form a component; the system is block-diagonal (one
    block per component) and the objectives used here are sums over cells, so the optimum of
    one programme over all blocks is the optimum of each block: one HiGHS call answers for
    every component at once instead of one call per component."""

    cells: np.ndarray  # variable -> cell position
    var_of: np.ndarray  # cell position -> variable, -1 when not a variable
    label: np.ndarray  # variable -> component label
    a_eq: Any
    b_eq: np.ndarray
    a_ub: Any
    b_ub: np.ndarray


def _spans(ptr: np.ndarray, order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The entries of ``order`` in the slices ``ptr[i]:ptr[i + 1]`` of every ``i`` in ``ids``."""
    starts, ends = ptr[ids], ptr[ids + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.asarray(order[shift + np.arange(total)], dtype=np.int64)


def _block(constraints: Constraints, known_values: np.ndarray, targets: np.ndarray) -> _Block | None:
    """The system of the components holding a target (None when no target is in an equation
    with an unknown); everything known is moved to the right-hand side. The components are
    found by a breadth-first walk from the targets (cell -> its equations -> their unknown
    cells), which touches only those components, not the whole table."""
    n_eq = constraints.equations
    if len(targets) == 0 or n_eq == 0:
        return None
    eq, cell, coef = constraints.eq, constraints.cell, constraints.coef
    by_cell, cell_ptr, by_eq, eq_ptr = constraints.index
    unknown = np.isnan(known_values)
    seen_cell = np.zeros(len(known_values), dtype=bool)
    seen_eq = np.zeros(n_eq, dtype=bool)
    frontier = np.unique(targets[unknown[targets]])
    while len(frontier):
        seen_cell[frontier] = True
        eqs = np.unique(eq[_spans(cell_ptr, by_cell, frontier)])
        eqs = eqs[~seen_eq[eqs]]
        seen_eq[eqs] = True
        reached = cell[_spans(eq_ptr, by_eq, eqs)]
        frontier = np.unique(reached[unknown[reached] & ~seen_cell[reached]])
    eq_ids = np.flatnonzero(seen_eq)
    if not len(eq_ids):
        return None
    terms = _spans(eq_ptr, by_eq, eq_ids)
    term_unknown = unknown[cell[terms]]
    known_part = np.where(term_unknown, 0.0, coef[terms] * np.nan_to_num(known_values[cell[terms]]))
    row_of = np.full(n_eq, -1, dtype=np.int64)
    row_of[eq_ids] = np.arange(len(eq_ids))
    constant = np.bincount(row_of[eq[terms]], weights=known_part, minlength=len(eq_ids))
    keep = terms[term_unknown]
    var_cells = np.unique(cell[keep])
    var_of = np.full(len(known_values), -1, dtype=np.int64)
    var_of[var_cells] = np.arange(len(var_cells))
    matrix = sparse.csr_matrix(
        (coef[keep], (row_of[eq[keep]], var_of[cell[keep]])), shape=(len(eq_ids), len(var_cells))
    )
    n_var, n_row = len(var_cells), len(eq_ids)
    graph = sparse.coo_matrix(
        (np.ones(len(keep)), (var_of[cell[keep]], n_var + row_of[eq[keep]])),
        shape=(n_var + n_row, n_var + n_row),
    )
    _, labels = connected_components(graph, directed=False)
    is_equal = constraints.equality[eq_ids]
    rhs = -constant
    return _Block(
        var_cells,
        var_of,
        labels[:n_var],
        matrix[is_equal],
        rhs[is_equal],
        -matrix[~is_equal],
        -rhs[~is_equal],
    )


class _Programme:
    """One HiGHS model of a block (scipy's bundled HiGHS, called directly: the block is
    solved many times with different objectives, so the model is passed once and every
    solve starts from the previous optimal basis).

    Variables: x (the block's unknown cells, >= 0), then y_t (one per target, with
    0 <= y_t <= cap_t and y_t <= x_t) so that "carry x_t up to cap_t" is the bounded
    objective max sum(w * y). A zero cost leaves y free to stay at 0, so the same model
    serves minimising x too."""

    def __init__(self, block: _Block, t_var: np.ndarray, cap: np.ndarray) -> None:
        n, m = len(block.cells), len(t_var)
        rows = np.concatenate([np.arange(m), np.arange(m)])
        cols = np.concatenate([t_var, n + np.arange(m)])
        link = sparse.csr_matrix((np.concatenate([-np.ones(m), np.ones(m)]), (rows, cols)), shape=(m, n + m))
        a_eq = sparse.hstack([block.a_eq, sparse.csr_matrix((block.a_eq.shape[0], m))])
        a_ub = sparse.hstack([block.a_ub, sparse.csr_matrix((block.a_ub.shape[0], m))])
        matrix = sparse.vstack([a_eq, a_ub, link], format="csc")
        matrix.sort_indices()
        inf = _highs.kHighsInf
        lower = np.concatenate([block.b_eq, np.full(a_ub.shape[0] + m, -inf)])
        upper = np.concatenate([block.b_eq, block.b_ub, np.zeros(m)])
        lp = _highs.HighsLp()
        lp.num_col_ = n + m
        lp.num_row_ = matrix.shape[0]
        lp.a_matrix_.num_col_ = n + m
        lp.a_matrix_.num_row_ = matrix.shape[0]
        lp.a_matrix_.format_ = _highs.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data.astype(float)
        lp.col_cost_ = np.zeros(n + m)
        lp.col_lower_ = np.zeros(n + m)
        lp.col_upper_ = np.concatenate([np.full(n, inf), np.maximum(cap, 0.0)])
        lp.row_lower_ = lower
        lp.row_upper_ = upper
        self.highs = _highs._Highs()
        self.highs.setOptionValue("output_flag", False)
        # Between solves only the costs change, so the last optimal basis stays feasible:
        # the primal simplex goes on from it (the dual simplex would start over).
        self.highs.setOptionValue("simplex_strategy", 4)  # kSimplexStrategyPrimal
        self.highs.passModel(lp)
        self.n, self.m = n, m
        self.columns = np.arange(n + m, dtype=np.int32)

    def solve(self, x_cost: np.ndarray, y_cost: np.ndarray) -> np.ndarray | None:
        """Minimise x_cost . x + y_cost . y: the x part of an optimal solution, or None when
        unbounded."""
        cost = np.concatenate([x_cost, y_cost]).astype(float)
        self.highs.changeColsCost(len(cost), self.columns, cost)
        self.highs.run()
        status = self.highs.getModelStatus()
        # the true table satisfies every constraint, so "unbounded or infeasible" is unbounded
        if status in (_highs.HighsModelStatus.kUnbounded, _highs.HighsModelStatus.kUnboundedOrInfeasible):
            return None
        if status != _highs.HighsModelStatus.kOptimal:
            message = self.highs.modelStatusToString(status)
            raise RuntimeError(f"disclosure audit: linear programme failed ({message})")
        return np.asarray(self.highs.getSolution().col_value)[: self.n]


def feasible_ranges(
    constraints: Constraints, known_values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value of each target cell given the constraints (two linear
    programmes per target). ``known_values``: per cell, the value a reader knows (NaN =
    unknown, any value >= 0). Upper is inf when unbounded; a target in no equation gets
    [0, inf)."""
    lower = np.zeros(len(targets))
    upper = np.full(len(targets), np.inf)
    block = _block(constraints, known_values, targets)
    if block is None:
        return lower, upper
    programme = _Programme(block, np.zeros(0, dtype=np.int64), np.zeros(0))
    for index, target in enumerate(targets):
        variable = block.var_of[target]
        if variable < 0:
            continue
        objective = np.zeros(len(block.cells))
        objective[variable] = 1.0  # the other blocks have no objective: they only stay feasible
        low = programme.solve(objective, np.zeros(0))
        high = programme.solve(-objective, np.zeros(0))
        assert low is not None
        lower[index] = max(float(low[variable]), 0.0)
        upper[index] = np.inf if high is None else float(high[variable])
    return lower, upper


def _push(programme: _Programme, t_var: np.ndarray, weights: np.ndarray, up: bool) -> np.ndarray:
    """One feasible table pushing the targets towards their requirement; the targets' values.

    up: maximise sum(w * y) (y_t <= x_t, y_t <= need_t: capped, so bounded);
    down: minimise sum(w * x_t)."""
    x_cost = np.zeros(programme.n)
    if up:
        solution = programme.solve(x_cost, -weights)
    else:
        np.add.at(x_cost, t_var, weights)
        solution = programme.solve(x_cost, np.zeros(programme.m))
    assert solution is not None  # both objectives are bounded
    return solution[t_var]


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

    Per direction, one programme over every component holding a target (hub.disclosure_audit
    ._Block) pushes every target at once; any feasible table it finds is a witness for every
    target it carries far enough. The targets still without a witness are pushed together
    again while that finds new witnesses. Then (``exact``) each target left gets a programme
    of its own, which decides it exactly (and may witness others): one target per component
    at a time, all components in one programme, since their objectives are independent.
    Far fewer programmes than a minimum and a maximum per cell, same answer. ``exact`` False
    skips that last step: a target without a witness counts as failing (safe for choosing
    suppressions, since every target reported protected has a witness).
    """
    short = {True: np.zeros(len(targets), dtype=bool), False: np.zeros(len(targets), dtype=bool)}
    block = _block(constraints, known_values, targets)
    if block is not None:
        t_var_all = block.var_of[targets]
        inside = np.flatnonzero(t_var_all >= 0)  # targets in no equation are never narrowed
        t_var = t_var_all[inside]
        t_label = block.label[t_var]
        programme = _Programme(block, t_var, need_high[inside])  # one model, both directions
        for up in (True, False):
            need = need_high[inside] if up else need_low[inside]

            def met(x: np.ndarray, need: np.ndarray = need, up: bool = up) -> np.ndarray:
                return (x >= need - _TOLERANCE) if up else (x <= need + _TOLERANCE)

            satisfied = met(_push(programme, t_var, np.ones(len(t_var)), up))
            while not satisfied.all():  # push the ones still without a witness, together
                reached = met(_push(programme, t_var, (~satisfied).astype(float), up))
                if not (reached & ~satisfied).any():
                    break
                satisfied |= reached
            undecided = ~satisfied
            while exact and undecided.any():
                pending = np.flatnonzero(undecided)
                _, first = np.unique(t_label[pending], return_index=True)
                chosen = pending[first]  # one target per component
                weights = np.zeros(len(t_var))
                weights[chosen] = 1.0
                reached = met(_push(programme, t_var, weights, up))
                failed = chosen[~reached[chosen]]
                short[up][inside[failed]] = True
                satisfied |= reached
                undecided &= ~satisfied
                undecided[chosen] = False
            if not exact:
                short[up][inside[~satisfied]] = True
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


def short_targets(
    constraints: Constraints,
    known_values: np.ndarray,
    targets: np.ndarray,
    policy: DisclosurePolicy,
    *,
    exact: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which ``targets`` a reader can narrow below the required range (a mask), and the
    required lower and upper bounds of every target."""
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
    return failing, need_low, need_high


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
    failing, need_low, need_high = short_targets(constraints, known_values, targets, policy, exact=exact)
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
