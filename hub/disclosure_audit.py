"""The disclosure audit: can a reader work a suppressed cell out from what a release publishes?

Every published table is a set of linear equations (a total is the sum of its parts) and
inequalities (a total is at least the sum of the parts it lists). For each suppressed
sensitive cell the audit solves two linear programmes (HiGHS, through highspy): the smallest and the
largest value the cell can take given every published value, every value an earlier release
published that has not changed, and non-negative unknowns. A cell whose range is exact or
narrower than the policy's protection is reported. hub.disclosure uses the same solver to
choose complementary suppressions; the tests use the audit to prove them sufficient.

The linear programme is the continuous relaxation: counts are integers, so the true range
can be a little narrower than the one found (limit stated in docs/disclosure.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from hub.figures import KEY_COLUMNS, joint_keys
from hub.vocab import PERIOD_KINDS

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
    (KEY_COLUMNS), or -1. One exact integer per key over both tables (hub.figures.joint_keys:
    no concatenated copy of their key columns; 0.65-0.69 s against 0.74-0.75 s for a 64-bit
    hash of factorised copies, on the demo's two releases in a warm process)."""
    target_keys, source_keys = joint_keys(target, source, KEY_COLUMNS)
    index = pd.Index(target_keys)
    if not index.is_unique:
        raise ValueError("the target table has two rows with the same key")
    return np.asarray(index.get_indexer(source_keys), dtype=np.int64)


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
    def period_kinds(self) -> tuple[np.ndarray, list[str]]:
        """Each cell's period kind as a code into the kinds present, finest first (hub.vocab
        PERIOD_KINDS order); factorised once, as every round of suppression asks again."""
        if "period_kind" not in self.cells.columns:
            return np.zeros(len(self.cells), dtype=np.int64), []
        codes, kinds = pd.factorize(self.cells["period_kind"])
        present = [kind for kind in PERIOD_KINDS if kind in set(kinds)]
        rank = np.asarray(
            [present.index(k) if k in present else len(present) for k in kinds] + [len(present)]
        )
        return rank[codes], present

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


@dataclass(frozen=True)
class _System:
    """Linear constraints over non-negative variables: ``a_eq @ x == b_eq`` and
    ``a_ub @ x <= b_ub``; ``label``: the connected component of each variable."""

    a_eq: Any  # scipy.sparse CSR
    b_eq: np.ndarray
    a_ub: Any  # scipy.sparse CSR
    b_ub: np.ndarray
    label: np.ndarray
    value: np.ndarray  # the true table (NaN when unknown to the caller): a feasible point

    @property
    def variables(self) -> int:
        return len(self.label)

    def steps(self, direction: np.ndarray) -> float:
        """How far the true table can move along ``direction`` (the difference of two
        feasible tables, so it keeps the equalities up to the solver's tolerance) and stay
        feasible: non-negative and within the inequalities. Never so far that the
        equalities' rounding error grows past _TOLERANCE, and at most MAX_STEP."""
        limit = MAX_STEP
        if self.a_eq.shape[0]:
            error = float(np.abs(self.a_eq @ direction).max())
            if error > 0:
                limit = min(limit, _TOLERANCE / error)
        falling = direction < 0
        if falling.any():
            limit = min(limit, float(np.min(self.value[falling] / -direction[falling])))
        if self.a_ub.shape[0]:
            rate = self.a_ub @ direction
            rising = rate > 0
            if rising.any():
                slack = np.maximum(self.b_ub - self.a_ub @ self.value, 0.0)
                limit = min(limit, float(np.min(slack[rising] / rate[rising])))
        return max(limit, 0.0)


@dataclass(frozen=True)
class _Block(_System):
    """The unknown cells of every connected component holding a target, as ONE linear
    system (everything known moved to the right-hand side).

    Unknown cells linked by an equation form a component; the system is block-diagonal (one
    block per component) and the objectives used here are sums over cells, so the optimum of
    one programme over several components is the optimum of each: components are solved in
    bins of about BIN_VARIABLES variables (small ones together, large ones alone), and the
    bins in parallel. Two cells an equation forces equal (``a == b``: an organisation and
    its country when the country has no other contributor) are one variable."""

    var_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # cell -> variable or -1
    eq_label: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # row -> component
    ub_label: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def part(self, labels: np.ndarray) -> tuple[_System, np.ndarray]:
        """The sub-system of the components ``labels`` and, per variable of the block, its
        variable in the sub-system (-1 outside)."""
        variables = np.isin(self.label, labels)
        local = np.full(self.variables, -1, dtype=np.int64)
        local[variables] = np.arange(int(variables.sum()))
        eq_rows, ub_rows = np.isin(self.eq_label, labels), np.isin(self.ub_label, labels)
        system = _System(
            self.a_eq[eq_rows][:, variables],
            self.b_eq[eq_rows],
            self.a_ub[ub_rows][:, variables],
            self.b_ub[ub_rows],
            self.label[variables],
            self.value[variables],
        )
        return system, local


BIN_VARIABLES = 1500
STAGED_KINDS = 2  # stages before the last: the finest period kind, then the two finest (_stages)
NEAR_TARGETS = 20_000  # fewer targets than this (the later rounds of suppression): a near stage too
NEAR_HOPS = 2  # how far from a target the near stage frees cells (equations away)
MAX_STEP = 1e3  # how far a witness direction is stretched at most (hub.disclosure_audit._System.steps)
WORKERS = max(1, min(4, os.cpu_count() or 1))


def _spans(ptr: np.ndarray, order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The entries of ``order`` in the slices ``ptr[i]:ptr[i + 1]`` of every ``i`` in ``ids``."""
    starts, ends = ptr[ids], ptr[ids + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.asarray(order[shift + np.arange(total)], dtype=np.int64)


def _merge_equal(
    matrix: Any, rhs: np.ndarray, is_equal: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Substitute the variables equations force equal (``x_a - x_b == 0``): one variable per
    class, those equations dropped, the others rewritten. Exact: both are non-negative, so
    the merged variable is too. Returns the new matrix, right-hand side, equality flags and
    each old variable's new one."""
    rows, n = matrix.shape
    counts = np.diff(matrix.indptr)
    row_ids = np.repeat(np.arange(rows), counts)
    unit = np.abs(matrix.data) == 1.0
    row_sum = np.bincount(row_ids, weights=matrix.data, minlength=rows)
    all_unit = np.bincount(row_ids, weights=unit.astype(float), minlength=rows) == counts
    pair = is_equal & (counts == 2) & all_unit & (row_sum == 0) & (np.abs(rhs) <= 1e-9)
    if not pair.any():
        return matrix, rhs, is_equal, np.arange(n)
    starts = matrix.indptr[:-1][pair]
    graph = sparse.coo_matrix(
        (np.ones(len(starts)), (matrix.indices[starts], matrix.indices[starts + 1])), shape=(n, n)
    )
    merged_count, merged = connected_components(graph, directed=False)
    projection = sparse.csr_matrix((np.ones(n), (np.arange(n), merged)), shape=(n, merged_count))
    reduced = (matrix[~pair] @ projection).tocsr()
    reduced.sum_duplicates()
    reduced.eliminate_zeros()
    keep = np.diff(reduced.indptr) > 0  # 0 == 0 rows: the true table satisfies them
    return reduced[keep], rhs[~pair][keep], is_equal[~pair][keep], merged


def _drop_repeated_equalities(
    matrix: Any, rhs: np.ndarray, is_equal: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Keep one of every set of equality rows with the same terms (up to sign). Exact: the
    true table satisfies each, so their right-hand sides are equal and the rows are one
    constraint. Once known cells are moved to the right and equal cells merged, the
    hierarchies repeat many rows (2,604 of 6,304 in the large benchmark's largest component),
    and every row costs the simplex on each iteration."""
    matrix = matrix.tocsr()
    if matrix.nnz == 0:
        return matrix, rhs, is_equal
    matrix.sort_indices()
    counts = np.diff(matrix.indptr)
    first = np.where(counts > 0, matrix.data[np.minimum(matrix.indptr[:-1], matrix.nnz - 1)], 1.0)
    data = matrix.data * np.repeat(np.where(first < 0, -1.0, 1.0), counts)
    # rows grouped by a hash of their terms; a row is dropped only once its terms are
    # compared with the kept row's one by one (a hash collision keeps both)
    term = _splitmix(matrix.indices.astype(np.uint64) * np.uint64(_GOLDEN) ^ data.view(np.uint64))
    total = np.concatenate([[np.uint64(0)], np.cumsum(term, dtype=np.uint64)])
    row_hash = _splitmix((total[matrix.indptr[1:]] - total[matrix.indptr[:-1]]) ^ counts.astype(np.uint64))
    rows = np.flatnonzero(is_equal)
    _, first_of, group = np.unique(row_hash[rows], return_index=True, return_inverse=True)
    kept_row = rows[first_of][group.reshape(-1)]
    repeat = kept_row != rows
    candidate, original = rows[repeat], kept_row[repeat]
    same = counts[candidate] == counts[original]
    candidate, original = candidate[same], original[same]
    keep = np.ones(matrix.shape[0], dtype=bool)
    if len(candidate):
        mine = _spans(matrix.indptr, np.arange(matrix.nnz), candidate)
        theirs = _spans(matrix.indptr, np.arange(matrix.nnz), original)
        differs = (matrix.indices[mine] != matrix.indices[theirs]) | (data[mine] != data[theirs])
        pair = np.repeat(np.arange(len(candidate)), counts[candidate])
        keep[candidate[np.bincount(pair, weights=differs, minlength=len(candidate)) == 0]] = False
    if keep.all():
        return matrix, rhs, is_equal
    return matrix[keep], rhs[keep], is_equal[keep]


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
    cell_var = np.full(len(known_values), -1, dtype=np.int64)
    cell_var[var_cells] = np.arange(len(var_cells))
    matrix = sparse.csr_matrix(
        (coef[keep], (row_of[eq[keep]], cell_var[cell[keep]])), shape=(len(eq_ids), len(var_cells))
    )
    matrix.sum_duplicates()
    matrix, rhs, is_equal, merged = _merge_equal(matrix, -constant, constraints.equality[eq_ids])
    matrix, rhs, is_equal = _drop_repeated_equalities(matrix, rhs, is_equal)
    var_of = np.full(len(known_values), -1, dtype=np.int64)
    var_of[var_cells] = merged
    value = np.full(matrix.shape[1], np.nan)
    value[merged] = constraints.cells["value"].to_numpy(dtype=float)[var_cells]
    n_var, n_row = matrix.shape[1], matrix.shape[0]
    graph = sparse.coo_matrix(
        (np.ones(matrix.nnz), (matrix.indices, n_var + np.repeat(np.arange(n_row), np.diff(matrix.indptr)))),
        shape=(n_var + n_row, n_var + n_row),
    )
    _, labels = connected_components(graph, directed=False)
    row_label = labels[n_var:]
    return _Block(
        matrix[is_equal],
        rhs[is_equal],
        -matrix[~is_equal],
        -rhs[~is_equal],
        labels[:n_var],
        value,
        var_of=var_of,
        eq_label=row_label[is_equal],
        ub_label=row_label[~is_equal],
    )


def _bins(block: _Block, labels: np.ndarray) -> list[np.ndarray]:
    """Components ``labels`` grouped into bins of at least BIN_VARIABLES variables (a
    component larger than that alone), largest first so the parallel workers finish
    together."""
    sizes = np.bincount(block.label)[labels]
    order = np.argsort(-sizes, kind="stable")
    bins: list[np.ndarray] = []
    current: list[int] = []
    filled = 0
    for position in order:
        current.append(int(labels[position]))
        filled += int(sizes[position])
        if filled >= BIN_VARIABLES:
            bins.append(np.asarray(current))
            current, filled = [], 0
    if current:
        bins.append(np.asarray(current))
    return bins


class _Programme:
    """One HiGHS model of a system (highspy, called directly: the system is solved many
    times with different objectives, so the model is passed once and every solve starts
    from the previous optimal basis).

    Each target variable's value is split in two columns with the same coefficients:
    x_t >= 0 and y_t in [0, cap_t] (every other variable is its x alone). Then "carry the
    targets up to their caps" is the bounded objective max sum(w * y), and any split of a
    table is feasible, so the model's tables are exactly the system's. The split adds no
    row (an earlier model linked y_t <= x_t by a row per target: a third more rows, and every
    row costs the simplex on each iteration)."""

    def __init__(self, system: _System, t_var: np.ndarray, cap: np.ndarray) -> None:
        n, m = system.variables, len(t_var)
        matrix = sparse.vstack(
            [
                sparse.hstack([system.a_eq, system.a_eq[:, t_var]]),
                sparse.hstack([system.a_ub, system.a_ub[:, t_var]]),
            ],
            format="csc",
        )
        matrix.sort_indices()
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = n + m
        lp.num_row_ = matrix.shape[0]
        lp.a_matrix_.num_col_ = n + m
        lp.a_matrix_.num_row_ = matrix.shape[0]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data.astype(float)
        lp.col_cost_ = np.zeros(n + m)
        lp.col_lower_ = np.zeros(n + m)
        lp.col_upper_ = np.concatenate([np.full(n, inf), np.maximum(cap, 0.0)])
        lp.row_lower_ = np.concatenate([system.b_eq, np.full(system.a_ub.shape[0], -inf)])
        lp.row_upper_ = np.concatenate([system.b_eq, system.b_ub])
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("threads", 1)  # the bins run in parallel instead
        # Between solves only the costs change, so the last optimal basis stays feasible:
        # the primal simplex goes on from it (the dual simplex would start over).
        self.highs.setOptionValue("simplex_strategy", 4)  # kSimplexStrategyPrimal
        self.highs.passModel(lp)
        self.n, self.m = n, m
        self.t_var = np.asarray(t_var, dtype=np.int64)
        self.columns = np.arange(n + m, dtype=np.int32)

    def solve(self, x_cost: np.ndarray, y_cost: np.ndarray) -> np.ndarray | None:
        """Minimise x_cost . X + y_cost . y over the tables X (X = x + y on the target
        variables): an optimal table, or None when unbounded."""
        cost = np.concatenate([x_cost, x_cost[self.t_var] + y_cost]).astype(float)
        self.highs.changeColsCost(len(cost), self.columns, cost)
        self.highs.run()
        status = self.highs.getModelStatus()
        # the true table satisfies every constraint, so "unbounded or infeasible" is unbounded
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            message = self.highs.modelStatusToString(status)
            raise RuntimeError(f"disclosure audit: linear programme failed ({message})")
        solution = np.asarray(self.highs.getSolution().col_value)
        table = solution[: self.n].copy()
        np.add.at(table, self.t_var, solution[self.n :])
        return table


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
    t_var = block.var_of[targets]
    for labels in _bins(block, np.unique(block.label[t_var[t_var >= 0]])):
        system, local = block.part(labels)
        programme = _Programme(system, np.zeros(0, dtype=np.int64), np.zeros(0))
        for index in np.flatnonzero(np.isin(block.label[np.maximum(t_var, 0)], labels) & (t_var >= 0)):
            variable = local[t_var[index]]
            objective = np.zeros(system.variables)
            objective[variable] = 1.0  # the other components have no objective: they only stay feasible
            low = programme.solve(objective, np.zeros(0))
            high = programme.solve(-objective, np.zeros(0))
            assert low is not None
            lower[index] = max(float(low[variable]), 0.0)
            upper[index] = np.inf if high is None else float(high[variable])
    return lower, upper


def _short_in(
    system: _System, t_var: np.ndarray, need_low: np.ndarray, need_high: np.ndarray, exact: bool
) -> dict[bool, np.ndarray]:
    """unprotected for the targets of one bin: per direction (True: up), which are short.

    Every table a programme finds is used twice: the difference D from the true table X
    (itself feasible) keeps every equality, so X + s * D is a feasible table for every step
    s in [-s_down, s_up] that keeps the cells non-negative and the inequalities (_System.steps).
    A push up thus also yields witnesses down for the cells it moved the other way, and
    stretching D as far as it goes can carry more targets over their requirement.

    Down first: a push down takes few iterations, and the line through its table, followed
    the other way, lifts many targets over their requirement up. The pushes up, each many
    times dearer, are then left with fewer targets (protect() on the large benchmark: 40-41 s
    instead of 42-44 s, and 222,081 secondary cells instead of 222,576, same runs).

    Several targets may be one variable (cells an equation forces equal): the programme has
    one column per variable, pushed up to the largest requirement of its targets, and every
    target is judged on its own requirement against the tables found."""
    short = {True: np.zeros(len(t_var), dtype=bool), False: np.zeros(len(t_var), dtype=bool)}
    # a requirement of -inf up (+inf down) is already met: an earlier stage found its witness
    satisfied = {True: need_high == -np.inf, False: need_low == np.inf}
    variables, of_target = np.unique(t_var, return_inverse=True)
    of_target = of_target.reshape(-1)
    cap = np.full(len(variables), -np.inf)
    np.maximum.at(cap, of_target, need_high)
    t_label = system.label[t_var]
    programme = _Programme(system, variables, cap)  # one model, both directions
    stretch = not np.isnan(system.value).any()

    def absorb(table: np.ndarray) -> None:
        """Record the targets ``table`` (and the line through it and the true table) witness."""
        reached = [table[t_var]]
        if stretch:
            direction = table - system.value
            direction[np.abs(direction) < _TOLERANCE] = 0.0  # the solver's rounding, not a move
            for sign in (1.0, -1.0):
                step = system.steps(sign * direction)
                moved = sign * direction[t_var]
                reached.append(system.value[t_var] + moved * step)
        for values in reached:
            satisfied[True] |= values >= need_high - _TOLERANCE
            satisfied[False] |= values <= need_low + _TOLERANCE

    def push(pending: np.ndarray, up: bool) -> None:
        """One programme carrying the variables of the ``pending`` targets (a mask) as far as
        their requirement (up), or as low as they go (down)."""
        weights = np.bincount(of_target[pending], minlength=len(variables)).clip(max=1).astype(float)
        x_cost = np.zeros(programme.n)
        if up:
            table = programme.solve(x_cost, -weights)
        else:
            x_cost[variables] = weights
            table = programme.solve(x_cost, np.zeros(programme.m))
        assert table is not None  # both objectives are bounded
        absorb(table)

    for up in (False, True):  # down first (see above)
        if not satisfied[up].all():
            push(~satisfied[up], up)
        while not satisfied[up].all():  # push the ones still without a witness, together
            before = int(satisfied[up].sum())
            push(~satisfied[up], up)
            if int(satisfied[up].sum()) == before:
                break
        undecided = ~satisfied[up]
        while exact and undecided.any():
            pending = np.flatnonzero(undecided)
            _, first = np.unique(t_label[pending], return_index=True)
            chosen = pending[first]  # one target per component
            mask = np.zeros(len(t_var), dtype=bool)
            mask[chosen] = True
            push(mask, up)
            short[up][chosen[~satisfied[up][chosen]]] = True
            undecided &= ~satisfied[up]
            undecided[chosen] = False
        if not exact:
            short[up][~satisfied[up]] = True
    return short


def _near(constraints: Constraints, known_values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cells within NEAR_HOPS equations of a target, through unknown cells."""
    by_cell, cell_ptr, by_eq, eq_ptr = constraints.index
    unknown = np.isnan(known_values)
    near = np.zeros(len(known_values), dtype=bool)
    frontier = np.unique(targets[unknown[targets]])
    near[frontier] = True
    for _ in range(NEAR_HOPS):
        eqs = np.unique(constraints.eq[_spans(cell_ptr, by_cell, frontier)])
        reached = constraints.cell[_spans(eq_ptr, by_eq, eqs)]
        frontier = np.unique(reached[unknown[reached] & ~near[reached]])
        near[frontier] = True
    return near


def _stages(constraints: Constraints, known_values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The reader's knowledge per stage of the search for witnesses, and which cells each
    stage frees (None: all, the last stage).

    A witness found with some unknown cells held at their true values is a witness in the
    full system too (the true table satisfies every constraint, so holding cells at it only
    adds constraints). The first stages free the finest period kinds only (months; then
    months and quarters): every coarser cell is held, each period's months then trade with
    each other only, and the components fall apart into many small ones, whose programmes
    cost a fraction of one over a whole metric-year. Only the targets still without a
    witness reach the last stage, over everything. On the large benchmark's first check
    the stages find witnesses for 63% of the targets and halve its time (docs/benchmarks.md)."""
    last: list[tuple[np.ndarray, np.ndarray | None]] = [(known_values, None)]
    rank, present = constraints.period_kinds
    if len(present) < 2:
        return last
    values = constraints.cells["value"].to_numpy(dtype=float)
    unknown = np.isnan(known_values)
    stages: list[tuple[np.ndarray, np.ndarray | None]] = []
    for finest in range(1, min(len(present) - 1, STAGED_KINDS) + 1):
        free = rank < finest
        stages.append((np.where(~free & unknown, values, known_values), free))
    return stages + last


def _near_stage(
    constraints: Constraints, known_values: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The stage before the last in later rounds: only the cells near the targets still
    without a witness are free (_near), every other unknown cell held at its true value.
    A target that failed a round usually fails for want of one cell nearby, which the round
    then hid: a witness through it is often local. On the large benchmark the suppression
    ends with 134 fewer secondary cells (222,576), in the same time (protect() 42.5-43.0 s
    with it, 42.3-43.4 s without, same runs). Not in the first check, whose targets are
    spread over whole components (measured slower in session 10)."""
    free = _near(constraints, known_values, targets)
    values = constraints.cells["value"].to_numpy(dtype=float)
    return np.where(~free & np.isnan(known_values), values, known_values), free


def _short_stage(
    constraints: Constraints,
    known_values: np.ndarray,
    targets: np.ndarray,
    need_low: np.ndarray,
    need_high: np.ndarray,
    exact: bool,
) -> dict[bool, np.ndarray]:
    """Per direction (True: up), which targets are short given ``known_values``: one
    programme per bin of components, the bins in parallel threads."""
    short = {True: np.zeros(len(targets), dtype=bool), False: np.zeros(len(targets), dtype=bool)}
    block = _block(constraints, known_values, targets)
    if block is None:
        return short
    t_var_all = block.var_of[targets]
    inside = np.flatnonzero(t_var_all >= 0)  # targets in no equation are never narrowed
    t_var = t_var_all[inside]
    jobs = []
    for labels in _bins(block, np.unique(block.label[t_var])):
        system, local = block.part(labels)
        mine = np.flatnonzero(np.isin(block.label[t_var], labels))
        jobs.append((mine, system, local[t_var[mine]]))

    def run(job: tuple[np.ndarray, _System, np.ndarray]) -> dict[bool, np.ndarray]:
        mine, system, local_t = job
        return _short_in(system, local_t, need_low[inside[mine]], need_high[inside[mine]], exact)

    if len(jobs) > 1 and WORKERS > 1:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(run, jobs))
    else:
        results = [run(job) for job in jobs]
    for (mine, _, _), result in zip(jobs, results, strict=True):
        for up in (True, False):
            short[up][inside[mine[result[up]]]] = True
    return short


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

    Per direction, one programme per bin of components holding a target (_Block, _bins)
    pushes every target at once; any feasible table it finds is a witness for every
    target it carries far enough. The targets still without a witness are pushed together
    again while that finds new witnesses. Then (``exact``) each target left gets a programme
    of its own, which decides it exactly (and may witness others): one target per component
    at a time, all components of the bin in one programme, since their objectives are
    independent. Far fewer programmes than a minimum and a maximum per cell, same answer.
    ``exact`` False skips that last step: a target without a witness counts as failing
    (safe for choosing suppressions, since every target reported protected has a witness).
    The bins are solved in parallel threads (HiGHS releases the GIL while it solves).
    Witnesses are looked for in stages (_stages): with the coarser periods held at their
    true values first, then (fewer than NEAR_TARGETS targets) with only the cells near the
    targets left free (_near_stage), then over everything for the targets left; only the
    last stage decides a target short.
    """
    either = (
        np.zeros(len(targets), dtype=bool) if either_side is None else np.asarray(either_side, dtype=bool)
    )
    witnessed = {True: np.zeros(len(targets), dtype=bool), False: np.zeros(len(targets), dtype=bool)}
    short = {True: np.zeros(len(targets), dtype=bool), False: np.zeros(len(targets), dtype=bool)}
    cell_free: np.ndarray | None
    stages: list[tuple[np.ndarray, np.ndarray | None] | None] = [*_stages(constraints, known_values)]
    if len(targets) < NEAR_TARGETS:
        stages.insert(-1, None)  # the near stage: its cells depend on the targets left by then
    for stage in stages:
        todo = ~(witnessed[True] & witnessed[False])
        if stage is None:
            stage = _near_stage(constraints, known_values, targets[todo])
        stage_known, cell_free = stage
        if cell_free is not None:
            todo &= cell_free[targets]
        rows = np.flatnonzero(todo)
        if not len(rows):
            continue
        # a direction already witnessed asks for nothing more (-inf up, +inf down)
        low = np.where(witnessed[False][rows], np.inf, need_low[rows])
        high = np.where(witnessed[True][rows], -np.inf, need_high[rows])
        found = _short_stage(constraints, stage_known, targets[rows], low, high, exact and cell_free is None)
        for up in (True, False):
            witnessed[up][rows] |= ~found[up]
            if cell_free is None:
                short[up][rows] = found[up]
        one_side = either & (witnessed[True] | witnessed[False])  # one side is enough for these
        witnessed[True] |= one_side
        witnessed[False] |= one_side
    both = short[True] & short[False]
    failing = short[True] | short[False]
    return np.where(either, both, failing)


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
    reasons = cells["protection"].iloc[targets].to_numpy(dtype=object)  # not all 4.8 M strings
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
