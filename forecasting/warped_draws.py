"""Close-time draws warped to each deal's own chances of closing within 4 and 13 weeks.

Pure. The time-to-win curve (`forecasting.timing`) times a won deal by its product and age;
where the CRM's stage history says more (`forecasting.stage_timing`), each deal comes with its
chances to close within `WITHIN_DAYS`, and `Warped` draws its close so that it honours them,
the curve's shape kept between and after the knots. Apart from `timing` to keep that module
small; `timing.KaplanMeier.sampler` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from forecasting.timing import Sampler

# where the CRM's stage history times a deal's win (`forecasting.stage_timing`): the chance a won
# deal closes within these days of the as-of date, per deal, warps its product/age curve
WITHIN_DAYS = (28, 91)
WITHIN_STEPS = 32  # summed small deals share a close-time class at this resolution of those chances
MAX_CLASSES = 4096  # ... or a coarser one, past this many classes (or twice the curve's own)
# where the curve has no close in a stretch the deal's chances fill, they are spread evenly over
# its days; after the last knot, over as many days again
FLAT_DAYS = np.r_[0.0, WITHIN_DAYS, 2 * WITHIN_DAYS[-1]].astype(float)


def within_columns() -> list[str]:
    """The deal columns that carry those chances (`Warped`)."""
    return [f"within_{d}d" for d in WITHIN_DAYS]


@dataclass
class Warped:
    """A `Sampler` whose deals close within each of `WITHIN_DAYS` with given chances (`within`,
    (deals, knots), from the stage history), the curve's own shape kept between and after them.

    Why: the product/age curve knows nothing of the stage. On the stages worlds a deal in
    Negotiation/Review closes 2-3 times sooner than it times and an early-stage one much later
    (benchmarks/forecast_timing_by_stage.py); a model of the stage's say
    (`forecasting.stage_timing`) gives each deal its chance to close within 4 and 13 weeks, and
    the draw is mapped piecewise linearly between the curve's chances and those, stretch by
    stretch (a stretch the curve leaves empty is filled evenly in days)."""

    base: Sampler
    within: np.ndarray  # (n, K): the chance a won deal closes within each knot's days
    curve_within: np.ndarray  # (n, K): the base sampler's chance, as it draws (not the curve's)

    @staticmethod
    def of(base: Sampler, within: np.ndarray) -> Warped:
        """The map starts from the base's own chances at the knots as it draws them
        (`Sampler.chances_within`): from any other, the knots are not honoured."""
        curve = base.chances_within()
        given = np.asarray(within, float)
        given = np.where(np.isnan(given), curve, given)  # nothing said: the curve's own
        target = np.maximum.accumulate(np.clip(given, 0, 1), axis=1)
        never = base.start <= 0  # too old for the curve: never closes, as before
        target[never] = 0.0
        return Warped(base, target.astype(np.float64), curve)

    def _knots(self, deal=None) -> tuple[np.ndarray, np.ndarray]:
        """(target, curve) chances at 0, each knot and the end (1), per deal: (n, K + 2)."""
        t, c = self.within, self.curve_within
        if deal is not None:
            t, c = t[deal], c[deal]
        zero, one = np.zeros((len(t), 1)), np.ones((len(t), 1))
        return np.hstack([zero, t, one]), np.hstack([zero, c, one])

    def _days(self, u: np.ndarray, deal=None) -> np.ndarray:
        """u (rows, n), or flat with `deal`: target uniforms -> days. Each stretch between knots
        is a straight line from the deal's chances to the curve's (its parameters per deal,
        broadcast along the rows: no per-cell look-ups); then the curve's own draw."""
        target, curve = self._knots(deal)
        lo, hi = target[:, :-1], target[:, 1:]
        c_lo, c_hi = curve[:, :-1], curve[:, 1:]
        width = hi - lo
        # before the float32 casts below: c_hi - float32(c_lo) of a flat stretch is ~1e-8, and
        # its draws went to the curve's last close instead of evenly over the stretch
        flat = (c_hi - c_lo < 1e-9) & (width > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(width > 0, (c_hi - c_lo) / width, 0.0).astype(np.float32)
        lo, c_lo = lo.astype(np.float32), c_lo.astype(np.float32)
        u = np.asarray(u, np.float32)
        level = c_lo[:, 0] + slope[:, 0] * u
        for k in range(1, lo.shape[1]):
            level = np.where(u >= lo[:, k], c_lo[:, k] + slope[:, k] * (u - lo[:, k]), level)
        np.clip(level, 0.0, np.nextafter(np.float32(1), np.float32(0)), out=level)
        days = self.base.dense_days(level) if deal is None else self.base.days(level, deal)
        # a stretch the curve leaves empty (no close there) but the deal's chances fill: evenly
        # in days across it (after the last knot, where the curve has closed every win, over as
        # many days again)
        edges = FLAT_DAYS
        for k in np.flatnonzero(flat.any(axis=0)):
            inside = flat[:, k] & (u >= lo[:, k]) & (u < hi[:, k])
            with np.errstate(divide="ignore", invalid="ignore"):
                even = edges[k] + (u - lo[:, k]) / width[:, k] * (edges[k + 1] - edges[k])
            days = np.where(inside, even, days)
        return np.asarray(days, np.float32)

    def days(self, u: np.ndarray, deal: np.ndarray) -> np.ndarray:
        return self._days(u, deal)

    def dense_days(self, u: np.ndarray) -> np.ndarray:
        return self._days(u)

    def can_close(self) -> np.ndarray:
        return self.base.can_close()

    def atom_chances(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As `Sampler.atom_chances`, each deal's chances warped as `dense_days` draws them; a
        class is a base class and the deal's chances at the knots to 1 / WITHIN_STEPS (coarser
        if that makes more than MAX_CLASSES classes and twice the base's: the summed small
        deals' memory grows with them, per shock level and group), at its members' mean."""
        cls, (out,) = self.atom_chances_at([edges])
        return cls, out

    def atom_chances_at(self, edge_sets: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """`atom_chances` at each of several sets of edges, the classes found once (they do not
        depend on the edges; 0.4 s each for a million deals)."""
        cls, chs = self.base.atom_chances_at(edge_sets)
        cap = max(MAX_CLASSES, 2 * len(chs[0]))
        steps = WITHIN_STEPS
        while True:  # coarser where a million deals would make too many classes to sum by
            step = np.round(self.within * steps).astype(np.int64)
            key = cls.astype(np.int64)
            for k in range(step.shape[1]):
                key = key * (steps + 1) + step[:, k]
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            if len(first) <= cap or steps <= 1:
                break
            # classes grow about as steps squared (two knots): straight to a fitting one
            steps = max(1, min(steps - 1, int(steps * (cap / len(first)) ** 0.5)))
        base_cls = cls[first]
        n = len(first)
        inverse = inverse.ravel()
        # each class at its members' mean chances, not the rounded ones: rounding all alike
        # (0.1 to 3/32) moved the summed deals' revenue by 6%
        count = np.bincount(inverse, minlength=n)
        mean = np.column_stack([np.bincount(inverse, weights=self.within[:, k], minlength=n) / count
                                for k in range(self.within.shape[1])])  # fmt: skip
        target = np.hstack([np.zeros((n, 1)), mean, np.ones((n, 1))])
        curve_k = np.hstack([np.zeros((n, 1)), self.curve_within[first], np.ones((n, 1))])
        return inverse, [self._warped(ch[base_cls], edges, target, curve_k)
                         for ch, edges in zip(chs, edge_sets, strict=True)]  # fmt: skip

    @staticmethod
    def _warped(ch: np.ndarray, edges: np.ndarray, target: np.ndarray,
                curve_k: np.ndarray) -> np.ndarray:  # fmt: skip
        """The classes' chances per stretch (`ch`, the curve's), warped to their chances at the
        knots (`target`; `curve_k`, the curve's own there)."""
        n = len(ch)
        cum = np.hstack([np.zeros((n, 1)), np.cumsum(ch, axis=1)])  # (C, A + 1)
        knot_days = np.r_[0.0, WITHIN_DAYS, np.inf]
        out = np.zeros_like(cum)
        e = np.asarray(edges, float)[None, :]
        for k in range(target.shape[1] - 1):
            lo, hi = target[:, k : k + 1], target[:, k + 1 : k + 2]
            c_lo, c_hi = curve_k[:, k : k + 1], curve_k[:, k + 1 : k + 2]
            in_days = (e >= knot_days[k]) & (e <= knot_days[k + 1])
            flat = c_hi - c_lo < 1e-9  # as `_days`: evenly over FLAT_DAYS' stretch
            with np.errstate(divide="ignore", invalid="ignore"):
                by_curve = lo + (hi - lo) * np.clip(
                    (cum - c_lo) / np.where(flat, 1.0, c_hi - c_lo), 0, 1
                )
            by_days = lo + (hi - lo) * np.clip(
                (e - FLAT_DAYS[k]) / (FLAT_DAYS[k + 1] - FLAT_DAYS[k]), 0, 1
            )
            out = np.where(in_days, np.where(flat, by_days, by_curve), out)
        return np.diff(out, axis=1)
