"""The INT8 search's measure: how a copy's answers compare with FP32's on held-back photos.

k folds over the user's photos (each held back once), top-1 agreement with its 95 % Wilson lower bound,
mean and max |Δprob|, the views FP32 itself nearly ties, and one attempt's record (Attempt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import registry
from ..errors import ConfigError
from .int8_quantizer import CALIBRATION_METHODS, Recipe

MAX_FOLDS = 4
Z95 = 1.959964                                        # two-sided 95 % normal quantile


def wilson_lower_bound(agree: int, n: int, z: float = Z95) -> float:
    """The 95 % Wilson score lower bound of a proportion agree/n (0 when n is 0)."""
    if n <= 0:
        return 0.0
    p = agree / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def views_needed(bar: float = registry.MIN_INT8_AGREEMENT) -> int:
    """How many views, all agreeing, lift the Wilson lower bound to `bar`."""
    n = 1
    while wilson_lower_bound(n, n) < bar:
        n += 1
    return n


def folds(n_photos: int, k: int = MAX_FOLDS) -> list[list[int]]:
    """Photo indices split round-robin into min(k, n) folds; each photo is in exactly one."""
    if n_photos < 2:
        raise ConfigError(f"k-fold evaluation needs at least 2 photos, got {n_photos}")
    k = max(2, min(k, n_photos))
    return [list(range(f, n_photos, k)) for f in range(k)]


def near_ties(p32: np.ndarray, margin: float = registry.MAX_INT8_MEAN_DPROB) -> np.ndarray:
    """Per view, whether FP32's two most likely labels are within `margin` of each other: a change of
    probabilities no larger than the gate allows on average (mean |Δprob|) can swap them."""
    top2 = np.sort(p32, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0] < margin


def flips_text(flips: int, near_tie_flips: int) -> str:
    """", 5 flips (3 near-ties)": an attempt's changed answers and how many of them FP32 itself nearly
    ties ("" when none), in the log line and on every screen."""
    if not flips:
        return ""
    return f", {flips} flip{'s' if flips > 1 else ''}" + (f" ({near_tie_flips} near-ties)" if near_tie_flips else "")


@dataclass
class Figures:
    """INT8 against FP32 on `views` views of `photos` photos; `near_ties` of them are near-ties in FP32
    (near_ties()), `near_tie_flips` of the disagreements are among those."""
    views: int
    photos: int
    agreement: float
    agreement_lb: float
    disagreements: int
    mean_abs_dprob: float
    max_abs_dprob: float
    near_ties: int = 0
    near_tie_flips: int = 0

    @classmethod
    def of(cls, p32: np.ndarray, p8: np.ndarray, photos: int) -> "Figures":
        agree = p32.argmax(1) == p8.argmax(1)
        delta = np.abs(p32 - p8).max(1)           # per view, the largest change of any label's probability
        tie = near_ties(p32)
        n, k = len(agree), int(agree.sum())
        return cls(views=n, photos=photos, agreement=k / n, agreement_lb=wilson_lower_bound(k, n),
                   disagreements=n - k, mean_abs_dprob=float(delta.mean()), max_abs_dprob=float(delta.max()),
                   near_ties=int(tie.sum()), near_tie_flips=int((tie & ~agree).sum()))


@dataclass
class Attempt:
    number: int
    method: str
    keep_fp32: list[str]
    agreement: float
    agreement_lb: float
    mean_abs_dprob: float
    max_abs_dprob: float
    views: int
    photos: int
    speedup: float
    fp32_ms_per_image: float
    int8_ms_per_image: float
    seconds: float
    meets_gate: bool
    problems: list[str] = field(default_factory=list)
    weights: str = "int8"                       # Recipe.weights
    bias_corrected: int = 0                     # convolutions whose bias took back their weights' mean shift
    near_ties: int = 0                          # Figures.near_ties
    near_tie_flips: int = 0                     # Figures.near_tie_flips

    def recipe(self) -> Recipe:
        return Recipe(self.method, tuple(self.keep_fp32), self.weights)

    def line(self) -> str:
        return (f"attempt {self.number}: {CALIBRATION_METHODS.get(self.method, ('dynamic',))[0]}"
                f"{', uint8 weights' if self.weights == 'uint8' else ''}, "
                f"{len(self.keep_fp32)} node(s) FP32 → agreement {registry.agreement_percent(self.agreement)} (95% LB "
                f"{self.agreement_lb:.1%}) on {self.views} views, mean |Δprob| {self.mean_abs_dprob:.4f}, "
                f"max {self.max_abs_dprob:.4f}, {self.speedup:.2f}x FP32{flips_text(self.flips, self.near_tie_flips)}"
                f" — {'meets the gate' if self.meets_gate else '; '.join(self.problems)}")

    @property
    def flips(self) -> int:
        """Views whose top-1 label INT8 changed."""
        return round(self.views * (1 - self.agreement))

    def decisive_agreement(self) -> float | None:
        """Top-1 agreement on the views that are not near-ties in FP32 (None when every view is one)."""
        decisive = self.views - self.near_ties
        return 1 - (self.flips - self.near_tie_flips) / decisive if decisive > 0 else None
