"""Many small deals at once: their revenue per stretch of days drawn from its normal law.

Why: drawing every deal in every scenario costs deals x scenarios draws (a billion for 100,000
open deals and 10,000 scenarios: 12 s on two cores). Given a scenario's shared shock the deals are
independent, so the revenue of thousands of small deals in a stretch of days is, by the central
limit theorem, normal, with a mean and a covariance that follow exactly from each deal's value,
win probability at that shock and close-time distribution. The biggest deals, whose single
outcome moves a total, are still drawn one by one (`montecarlo.simulate`); only the small ones
are summed here. Pure.

The stretches ("atoms") are the days between consecutive period boundaries: every period is a
union of atoms, so the atoms' joint law gives every period's. A deal closes in one atom at most,
so the atoms' sums covary negatively (as a multinomial's counts do); the covariance keeps that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Atoms:
    """The stretches of days between period boundaries, and which make each period."""

    edges: np.ndarray  # 0 = b_0 < b_1 < ... < b_A = horizon (days from the as-of date)
    to_periods: np.ndarray  # (A, P): 1 where atom a lies in period k

    @staticmethod
    def of(periods) -> Atoms:
        horizon = periods.horizon
        edges = np.unique(np.r_[0, periods.start, periods.end, horizon].astype(np.int64))
        edges = edges[(edges >= 0) & (edges <= horizon)]
        lo, hi = edges[:-1, None], edges[1:, None]
        inside = (lo >= np.asarray(periods.start)[None, :]) & (hi <= np.asarray(periods.end)[None, :])  # fmt: skip
        return Atoms(edges=edges, to_periods=inside.astype(np.float64))


@dataclass(frozen=True)
class SmallDeals:
    """The small deals' revenue per (shock level, slip level, group, atom): its mean and a
    square root of its covariance (`root @ root.T`), so a draw is `mean + root @ z`, z standard
    normal."""

    mean: np.ndarray  # (levels, slips, groups, atoms)
    root: np.ndarray  # (levels, slips, groups, atoms, atoms)
    atoms: Atoms

    def draw(self, rng: np.random.Generator, level: np.ndarray,
             slip: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """Revenue per (scenario, group, period) of the small deals, for each scenario's shock
        and slip levels. A stretch's revenue is never below zero (the normal law's far tail
        would be)."""
        slip = np.zeros(len(level), np.int64) if slip is None else slip
        z = rng.standard_normal((len(level), *self.mean.shape[2:]))
        x = self.mean[level, slip] + np.einsum("sgab,sgb->sga", self.root[level, slip], z)
        np.maximum(x, 0.0, out=x)
        return x @ self.atoms.to_periods


def slipped_edges(edges: np.ndarray, slip: int) -> np.ndarray:
    """The stretches' edges in the days a deal would close without a slip of `slip` days (every
    close that much later; sooner where negative, but none before day 0, whose stretch takes
    them all)."""
    out = np.asarray(edges, np.int64) - int(slip)
    out[0] = min(out[0], 0)
    return out


def small_deals(value: np.ndarray, p_table: Sequence[np.ndarray], sampler, atoms: Atoms,
                group: np.ndarray | None, n_groups: int,
                slips: np.ndarray | None = None, share: float = 1.0,
                pace=None) -> SmallDeals:  # fmt: skip
    """`value` (n), `p_table` (levels, n): each deal's win probability at each shock level (an
    array, or rows made as they are read);
    `sampler`: the deals' close-time sampler (`timing.Sampler.atom_chances_at`); `group`: each
    deal's breakdown group (None: one group); `slips`: the slip levels, in whole days (none:
    no slip), which each deal follows with chance `share`: given the level, a deal's close is
    then in a stretch with the mix of its chances slipped and not, and the deals stay
    independent, so the law below holds as it is. `pace`: the calendar's pace of wins
    (`quarter_pace.PaceClock`), which moves every close before the slip."""
    n_atoms = len(atoms.edges) - 1
    slips = np.zeros(1, np.int64) if slips is None else np.asarray(slips)
    # the classes (the deals' groups and ages, and chances at the knots) found once, their
    # chances per stretch at each slip
    edge_sets = [slipped_edges(atoms.edges, int(d)) for d in slips]
    if share < 1.0:
        edge_sets.append(atoms.edges)
    if pace is None:
        cls, at = sampler.atom_chances_at(edge_sets)
    else:
        cls, at = pace.chances(sampler, edge_sets)
    if share < 1.0:
        own = at.pop()
        at = [share * chances + (1.0 - share) * own for chances in at]
    n_cls = len(at[0])
    cell = (0 if group is None else group.astype(np.int64)) * n_cls + cls
    size = n_groups * n_cls

    # summed level by level: no (levels x deals) float64 array (1.5 GB for a million deals)
    w1, w2, w3 = (np.empty((len(p_table), n_groups, n_cls)) for _ in range(3))
    square = value**2
    for level, p in enumerate(p_table):
        p = p.astype(np.float64)
        w1[level] = np.bincount(cell, weights=value * p, minlength=size).reshape(n_groups, n_cls)
        w2[level] = np.bincount(cell, weights=square * p, minlength=size).reshape(n_groups, n_cls)
        p *= p
        w3[level] = np.bincount(cell, weights=square * p, minlength=size).reshape(n_groups, n_cls)
    mean = np.stack([w1 @ chances for chances in at], axis=1)  # (L, J, G, A)
    # Var of one deal's revenue in atom a: v^2 q_a (1 - q_a); covariance of a and b: -v^2 q_a q_b,
    # with q_a = p c_a (won, and closing in a): diag(v^2 p c) - v^2 p^2 c c^T, summed per class
    cov = np.stack([-_weighted_outer(w3, chances) for chances in at], axis=1)
    diagonal = np.arange(n_atoms)
    for j, chances in enumerate(at):
        view = cov[:, j]  # (L, G, A, A)
        view[..., diagonal, diagonal] += w2 @ chances
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]
    return SmallDeals(mean=mean, root=root, atoms=atoms)


OUTER_CELLS = 4_000_000  # a block of classes' outer products at most (32 MB)


def _weighted_outer(w: np.ndarray, chances: np.ndarray) -> np.ndarray:
    """sum_c w[..., c] chances[c, a] chances[c, b] -> (..., A, A), as one matrix product per
    block of classes (each class's outer product flattened): numpy's einsum of the same sum
    took 1.2 s of the million-deal forecast, whose summed deals fall in 4,096 close-time classes
    where the stage models time them (0.06 s so); equal to 1e-14 relative."""
    n_cls, n_atoms = chances.shape
    lead = w.shape[:-1]
    flat = w.reshape(int(np.prod(lead)), n_cls)
    out = np.zeros((flat.shape[0], n_atoms * n_atoms))
    block = max(1, OUTER_CELLS // (n_atoms * n_atoms))
    for first in range(0, n_cls, block):
        c = chances[first : first + block]
        out += flat[:, first : first + block] @ (c[:, :, None] * c[:, None, :]).reshape(len(c), -1)
    return out.reshape(*lead, n_atoms, n_atoms)
