"""Accuracy-aware INT8: quantize, measure on the user's photos (k-fold), keep the nodes that hurt in FP32.

    photos → k folds (each photo is held back exactly once; the others calibrate)
    attempt = a recipe (calibration method, nodes kept in FP32) quantized once per fold by onnxruntime,
              its biases corrected for the 8-bit weights' mean shift (bias_correction), its logits
              left float (output_ops); each fold's model judged on its held-back photos' views against FP32:
              top-1 agreement with its 95 % Wilson lower bound, mean and max |Δprob|, speed-up
    search:  the calibration methods first (AUTO_METHODS: MinMax, Percentile; on a CPU whose uint8 × int8
             products saturate, the first that misses the gate is tried again with uint8 matrix-product
             weights, and the better weights serve the methods after it); when none meets the gate,
             the nodes of the best one are ranked in segments by the error they add (quantized vs
             FP32 outputs, onnxruntime.quantization.qdq_loss_debug) and the worst segments are kept
             in FP32 (a Conv with its ReLU6, never one without the other), doubling their number,
             then bisecting, until the gate holds, the speed-up is gone or the time budget is spent.
             A node kept in FP32 runs in FP32: imgai's sessions turn off onnxruntime's
             WeightBiasQuantization (session.DISABLED_OPTIMIZERS), which would quantize its weights.

onnxruntime does every quantization (int8_quantizer.Quantizer); the calibration ranges of each fold are computed once per
method (onnxruntime's calibration cache) and reused by the node attempts.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import ConfigError
from ..log import get_logger
from .int8_quantizer import CALIBRATION_METHODS, Batches, Quantizer, Recipe

LOG = get_logger("imgai.int8")

# `models quantize --method`: auto tries every calibration method and keeps the best; dynamic needs no calibration
QUANTIZE_METHODS = ("auto", *CALIBRATION_METHODS, "dynamic")
DEFAULT_BUDGET_S = 300.0                              # the search's time budget (a ResNet-50 on 2 cores)
DEFAULT_MIN_SPEEDUP = 1.1                             # slower than this vs FP32: FP32 is the better choice
MAX_FOLDS = 4
MAX_SEARCH_PHOTOS = 48                                # more photos are sampled evenly down to this
Z95 = 1.959964                                        # two-sided 95 % normal quantile
SENSITIVITY_VIEWS = 4                                 # calibration views the node error is measured on


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



def gate_problems(figures: dict) -> list[str]:
    """Why an INT8 model's figures fall short of the gate (empty: it holds). Gate: top-1 agreement
    ≥ registry.MIN_INT8_AGREEMENT and mean |Δprob| ≤ registry.MAX_INT8_MEAN_DPROB."""
    return registry.int8_gate_problems(figures)


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
                f"{len(self.keep_fp32)} node(s) FP32 → agreement {self.agreement:.1%} (95% LB "
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


@dataclass
class SearchResult:
    attempts: list[Attempt]
    chosen: Attempt
    enable: bool
    why: str
    budget_s: float
    seconds: float
    budget_exhausted: bool
    nodes_ranked: list[str]                      # the first 64, segment after segment
    min_speedup: float
    folds: int
    small_sample: str | None                     # "too small to judge" in words, when it is
    speed_batch: int = 0                         # images per timed call
    segment_sizes: list[int] = field(default_factory=list)   # nodes per ranked segment (rank_segments)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chosen"] = self.chosen.number
        return d


def _infer(tagger, arrays: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([tagger.infer(arrays[i:i + batch]) for i in range(0, len(arrays), batch)])


def _time(taggers: dict, x: np.ndarray, rounds: int) -> dict[str, float]:
    """Median ms per image of each tagger on the same batch, timed in turns."""
    times: dict[str, list[float]] = {k: [] for k in taggers}
    for tagger in taggers.values():
        tagger.infer(x)                           # warm-up
    for _ in range(rounds):
        for key, tagger in taggers.items():
            t0 = time.perf_counter()
            tagger.infer(x)
            times[key].append((time.perf_counter() - t0) * 1000 / len(x))
    return {k: float(np.median(v)) for k, v in times.items()}


class OutOfTime(Exception):
    """An attempt stopped between its folds because the search's budget is spent (never the first
    attempt: the search always has one to choose)."""


class Search:
    """The accuracy-aware search over one FP32 model folder and a set of photos' views.

    `photo_views[i]` holds photo i's views (its first `calibration_views` calibrate when it is not
    held back); `model_dir` holds model.onnx (the prepared graph is `prepared`), labels and preprocessing."""

    def __init__(self, model_dir: Path, prepared: Path, photo_views: list[np.ndarray], scratch: Path, *,
                 input_name: str, batch: int, excluded_always: list[str], calibration_views: int,
                 op_types: list[str] | None = None, speed_rounds: int = 5, on_attempt=None, event=None):
        from .tag import Tagger

        self.model_dir, self.scratch = model_dir, scratch
        self.photo_views, self.calibration_views = photo_views, calibration_views
        self.batch, self.speed_rounds = batch, speed_rounds
        self.folds = folds(len(photo_views))
        self.quantizer = Quantizer(prepared, scratch, input_name=input_name, batch=batch,
                                   excluded_always=excluded_always, op_types=op_types)
        self.fp32 = Tagger(model_dir)
        self.eval_views = [np.concatenate([photo_views[i] for i in fold]) for fold in self.folds]
        self.p32 = [_infer(self.fp32, v, batch) for v in self.eval_views]
        self.attempts: list[Attempt] = []
        self.on_attempt = on_attempt or (lambda attempt: None)
        self.event = event or (lambda message, **kw: None)
        self._n = 0
        self.deadline: float | None = None       # time.monotonic() past which a later attempt stops between folds

    def calibration(self, photos: list[int]) -> np.ndarray:
        return np.concatenate([self.photo_views[i][:self.calibration_views] for i in photos])

    def _candidate_dir(self, tag: str) -> Path:
        from .labels import TAGS_FILE

        folder = self.scratch / tag
        folder.mkdir()
        for name in ("labels.json", "preprocess.json", TAGS_FILE):
            if (self.model_dir / name).is_file():
                shutil.copyfile(self.model_dir / name, folder / name)
        return folder

    def evaluate(self, recipe: Recipe) -> Attempt:
        """Quantize once per fold (calibrated on the other folds' photos), judge each fold's model on
        its held-back photos; speed from the first fold's model against FP32."""
        from .tag import Tagger

        t0 = time.monotonic()
        self._n += 1
        p8, first, corrected = [], None, 0
        if recipe.method == "minmax" and len(self.folds) > 2 and not self.quantizer.cache_path("minmax", "f0").is_file():
            self.quantizer.calibrate_folds([self.calibration(fold) for fold in self.folds])
        for f, fold in enumerate(self.folds):
            if f and self.attempts and self.deadline is not None and time.monotonic() > self.deadline:
                shutil.rmtree(self.scratch / f"a{self._n}f0", ignore_errors=True)
                raise OutOfTime(f"attempt {self._n} stopped after {f} of {len(self.folds)} folds: the budget is spent")
            if recipe.method == "dynamic" and first is not None:    # no calibration: one model serves every fold
                p8.append(_infer(first, self.eval_views[f], self.batch))
                continue
            others = [i for g, other in enumerate(self.folds) if g != f for i in other]
            folder = self._candidate_dir(f"a{self._n}f{f}")
            self.quantizer.write(recipe, folder / "model.onnx",
                                 None if recipe.method == "dynamic" else self.calibration(others), cache_key=f"f{f}")
            tagger = Tagger(folder)
            p8.append(_infer(tagger, self.eval_views[f], self.batch))
            if first is None:
                first, corrected = tagger, self.quantizer.bias_corrected     # 0 for dynamic: write() resets it
            else:
                del tagger
                shutil.rmtree(folder, ignore_errors=True)
        figures = Figures.of(np.concatenate(self.p32), np.concatenate(p8), len(self.photo_views))
        speed = _time({"fp32": self.fp32, "int8": first}, self.eval_views[0][:self.batch], self.speed_rounds)
        problems = gate_problems({"top1_agreement": figures.agreement, "mean_abs_dprob": figures.mean_abs_dprob})
        attempt = Attempt(number=self._n, method=recipe.method, keep_fp32=list(recipe.keep_fp32), weights=recipe.weights,
                          bias_corrected=corrected,
                          agreement=figures.agreement, agreement_lb=figures.agreement_lb,
                          mean_abs_dprob=figures.mean_abs_dprob, max_abs_dprob=figures.max_abs_dprob,
                          views=figures.views, photos=figures.photos, near_ties=figures.near_ties,
                          near_tie_flips=figures.near_tie_flips, speedup=speed["fp32"] / speed["int8"],
                          fp32_ms_per_image=speed["fp32"], int8_ms_per_image=speed["int8"],
                          seconds=round(time.monotonic() - t0, 1), meets_gate=not problems, problems=problems)
        shutil.rmtree(self.scratch / f"a{self._n}f0", ignore_errors=True)
        self.attempts.append(attempt)
        LOG.info("%s", attempt.line())
        self.on_attempt(attempt)
        return attempt

    def rank_nodes(self, recipe: Recipe) -> list[list[str]]:
        """The graph's nodes in segments (rank_segments), the one whose quantization adds the most error
        first: SQNR of each measured output (quantized vs FP32, on calibration views of the first fold's
        calibration photos) against the worst SQNR of the segment's inputs."""
        import onnx
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                             create_activation_matching,
                                                             modify_model_output_intermediate_tensors)

        others = [i for g, other in enumerate(self.folds) if g != 0 for i in other]
        views = self.calibration(others)[:SENSITIVITY_VIEWS]
        folder = self.scratch / "sensitivity"
        folder.mkdir(exist_ok=True)
        qdq = self.quantizer.write(recipe, folder / "qdq.onnx", self.calibration(others), cache_key="f0")
        acts = {}
        for name, path in (("float", self.quantizer.prepared), ("qdq", qdq)):
            augmented = folder / f"{name}-augmented.onnx"
            modify_model_output_intermediate_tensors(str(path), str(augmented))
            acts[name] = collect_activations(str(augmented), Batches(self.quantizer.input_name, views, 1))
        errors = compute_activation_error(create_activation_matching(acts["qdq"], acts["float"]))
        sqnr = {name: e["xmodel_err"] for name, e in errors.items() if "xmodel_err" in e}
        shutil.rmtree(folder, ignore_errors=True)
        graph = onnx.load(str(self.quantizer.prepared), load_external_data=False).graph
        return rank_segments(graph, sqnr, skip=set(self.quantizer.excluded_always))


def rank_segments(graph, sqnr: dict[str, float], *, skip: set[str]) -> list[list[str]]:
    """Segments of node names, worst first. A node whose output is measured (quantized in the QDQ
    graph) and the unmeasured nodes feeding it (a Conv fused with its ReLU6 has no QDQ of its own)
    form a segment, scored by the SQNR it loses: the worst SQNR of its inputs minus that of its
    output. The search keeps whole segments in FP32: the ReLU6 alone would leave its Conv's output
    quantized over the Conv's whole range, not 0…6 (on the demo: 64 % agreement where none kept gave
    95 %). Nodes in no segment follow, one a segment, so keeping every segment in FP32 is FP32."""
    producer = {o: n for n in graph.node for o in n.output}
    scored, seen = [], set()
    for node in graph.node:
        outs = [sqnr[o] for o in node.output if o in sqnr]
        if not node.name or not outs:
            continue
        segment, stack, ins = [], [node], []
        while stack:
            n = stack.pop()
            if n.name in seen or n.name in skip:
                continue
            seen.add(n.name)
            segment.append(n.name)
            for i in n.input:
                if i in sqnr:
                    ins.append(sqnr[i])
                elif i in producer and not any(o in sqnr for o in producer[i].output):
                    stack.append(producer[i])
        before = min(ins) if ins else 100.0          # a segment fed by the image: no error before it
        if segment:
            scored.append((before - min(outs), segment))
    scored.sort(key=lambda s: -s[0])
    return [segment for _, segment in scored] + [[n.name] for n in graph.node
                                                 if n.name and n.name not in seen and n.name not in skip]


MAX_FP32_SHARE = 3      # quarters of the ranked nodes the search may keep in FP32


def within_share(segments: list[list[str]], max_nodes: int | None = None) -> list[list[str]]:
    """The worst segments whose nodes add up to at most three quarters of all ranked nodes (or `max_nodes`)."""
    limit = MAX_FP32_SHARE * sum(map(len, segments)) // 4 if max_nodes is None else max_nodes
    kept, total = [], 0
    for segment in segments:
        if total + len(segment) > limit:
            break
        kept.append(segment)
        total += len(segment)
    return kept


def counts_to_try(lo: int, hi: int) -> int:
    """Bisection step between a failing count `lo` and a passing count `hi`."""
    return (lo + hi) // 2


def run_search(search: Search, *, methods: list[str], budget_s: float, min_speedup: float,
               max_nodes: int | None = None) -> SearchResult:
    """Methods first, then segments of nodes kept in FP32 (their number doubling, then bisecting);
    bounded by `budget_s`. At most three quarters of the ranked nodes (or `max_nodes`) are kept in
    FP32: a copy that keeps more is an FP32 model with a few INT8 layers, and its "speed-up" is
    timing noise."""
    t0 = time.monotonic()
    exhausted = False
    search.deadline = t0 + budget_s

    def room() -> bool:
        nonlocal exhausted
        done = search.attempts
        typical = sum(a.seconds for a in done) / len(done) if done else 0.0
        exhausted = exhausted or (time.monotonic() - t0 + typical > budget_s)
        return not exhausted

    def good(a: Attempt) -> bool:
        return a.meets_gate and a.speedup >= min_speedup

    segments: list[list[str]] = []
    quantizer = getattr(search, "quantizer", None)
    weights, uint8_untried = "int8", bool(quantizer and quantizer.matrix_weights)
    try:
        for method in methods:
            if search.attempts and not room():
                break
            attempt = search.evaluate(Recipe(method, weights=weights))
            if good(attempt):
                break
            if uint8_untried and method != "dynamic" and room():     # the saturation-free weights, once
                uint8_untried = False
                other = search.evaluate(Recipe(method, weights="uint8"))
                if good(other):
                    break
                if (other.agreement, -other.mean_abs_dprob) > (attempt.agreement, -attempt.mean_abs_dprob):
                    weights = "uint8"
    except OutOfTime as stop:
        exhausted = True
        search.event(str(stop))
    # the nodes are ranked on a calibrated attempt (a QDQ graph; dynamic has none), the best one fast
    # enough (keeping nodes in FP32 only slows INT8 down); one slow timing of one method (they are
    # noisy on a shared machine) does not end the search
    calibrated = [a for a in search.attempts if a.method != "dynamic"]
    fast = [a for a in calibrated if a.speedup >= min_speedup]
    base = max(fast or calibrated or search.attempts, key=lambda a: (a.agreement, -a.mean_abs_dprob))
    if not any(good(a) for a in search.attempts) and fast and room():
        search.event(f"ranking the nodes of {Recipe(base.method, weights=base.weights).describe()} by the error they add")
        segments = within_share(search.rank_nodes(Recipe(base.method, weights=base.weights)), max_nodes)
        lo, hi, n = 0, None, 1
        tried: dict[int, Attempt] = {}
        while segments and room():
            keep = tuple(name for segment in segments[:n] for name in segment)
            try:
                attempt = tried[n] = search.evaluate(Recipe(base.method, keep, base.weights))
            except OutOfTime as stop:
                exhausted = True
                search.event(str(stop))
                break
            if good(attempt):
                hi = n
            elif attempt.speedup < min_speedup:
                break                                     # the speed-up is gone
            else:
                lo = n
            if hi is None:
                if n >= len(segments):
                    break
                n = min(2 * n, len(segments))
            else:
                n = counts_to_try(lo, hi)
                if n in tried or n <= lo:
                    break
    # spent, whichever way the search ended (room() is only asked when another attempt is considered:
    # a run whose one attempt was too slow to search further must not read as "within budget")
    exhausted = exhausted or time.monotonic() - t0 >= budget_s
    result = _choose(search.attempts, budget_s=budget_s, seconds=time.monotonic() - t0, exhausted=exhausted,
                     segments=segments, min_speedup=min_speedup, n_folds=len(search.folds))
    result.speed_batch = min(search.batch, len(search.eval_views[0]))
    return result


def _choose(attempts: list[Attempt], *, budget_s, seconds, exhausted, segments, min_speedup, n_folds) -> SearchResult:
    passing = [a for a in attempts if a.meets_gate]
    fast = [a for a in passing if a.speedup >= min_speedup]
    if fast:
        chosen = min(fast, key=lambda a: (len(a.keep_fp32), -a.speedup))
        enable = True
        why = (f"attempt {chosen.number} ({chosen.recipe().describe()}) meets the "
               f"gate at {chosen.speedup:.2f}x FP32 with the fewest nodes in FP32")
    elif passing or max(a.speedup for a in attempts) < min_speedup:
        chosen = max(passing or attempts, key=lambda a: (a.speedup if passing else a.agreement))
        enable = False
        why = (f"FP32 is the better choice: INT8 runs at only {chosen.speedup:.2f}x FP32's speed (needs ≥ "
               f"{min_speedup:.2f}x), so it is not enabled on speed grounds"
               + ("" if passing else f"; its best agreement was {chosen.agreement:.1%} (95% LB "
                  f"{chosen.agreement_lb:.1%}), mean |Δprob| {chosen.mean_abs_dprob:.4f}"))
    else:
        # the copy kept is the best one that is fast enough: a slower one would never be worth enabling
        def best(group):
            return max(group, key=lambda a: (a.agreement, -a.mean_abs_dprob))

        chosen = best([a for a in attempts if a.speedup >= min_speedup])
        enable = False
        kept = sorted({n for a in attempts for n in a.keep_fp32})
        limit = ("the time budget ran out" if exhausted else
                 "the speed-up was gone" if any(a.speedup < min_speedup for a in attempts) else
                 "no recipe left to try")
        slow = best(attempts)
        slower = ("" if slow.agreement <= chosen.agreement else
                  f"; {slow.agreement:.1%} took {len(slow.keep_fp32)} node(s) in FP32, at only {slow.speedup:.2f}x")
        why = (f"the gate was not met ({limit}; {len(attempts)} attempt(s) in {seconds:.0f} s of a "
               f"{budget_s:.0f} s budget): best agreement at ≥ {min_speedup:.2f}x FP32 {chosen.agreement:.1%} "
               f"(95% LB {chosen.agreement_lb:.1%}), mean |Δprob| {chosen.mean_abs_dprob:.4f} with "
               f"{len(chosen.keep_fp32)} node(s) in FP32{slower}; {len(kept)} node(s) tried in FP32; the copy is "
               f"kept but not enabled (enable it with --force)")
    need = views_needed()
    small = None
    if chosen.views < need:
        per_photo = max(1, chosen.views // max(1, chosen.photos))
        small = (f"{chosen.photos} photos ({chosen.views} views) are too few to show {registry.MIN_INT8_AGREEMENT:.0%} "
                 f"agreement with 95% confidence: that needs ≥ {need} agreeing views, about "
                 f"{math.ceil(need / per_photo)} photos")
    return SearchResult(attempts=attempts, chosen=chosen, enable=enable, why=why, budget_s=budget_s,
                        seconds=round(seconds, 1), budget_exhausted=exhausted,
                        nodes_ranked=[name for segment in segments for name in segment][:64],
                        segment_sizes=[len(segment) for segment in segments][:64],
                        min_speedup=min_speedup, folds=n_folds, small_sample=small)
