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
method (onnxruntime's calibration cache) and reused by the node attempts. The measure (folds, agreement and
its lower bound, near-ties, one attempt's record) is int8_figures'.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..log import get_logger
from .int8_figures import Attempt, Figures, folds, views_needed
from .int8_quantizer import CALIBRATION_METHODS, Batches, Quantizer, Recipe

LOG = get_logger("imgai.int8")

# `models quantize --method`: auto tries every calibration method and keeps the best; dynamic needs no calibration
QUANTIZE_METHODS = ("auto", *CALIBRATION_METHODS, "dynamic")
DEFAULT_BUDGET_S = 300.0                              # the search's time budget (a ResNet-50 on 2 cores)
DEFAULT_MIN_SPEEDUP = 1.1                             # slower than this vs FP32: FP32 is the better choice
MAX_SEARCH_PHOTOS = 48                                # more photos are sampled evenly down to this
SENSITIVITY_VIEWS = 4                                 # calibration views the node error is measured on


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
        problems = registry.int8_gate_problems({"top1_agreement": figures.agreement,
                                                "mean_abs_dprob": figures.mean_abs_dprob})
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


def _closest_then_fastest(a: Attempt) -> tuple:
    """The order of attempts that miss the gate: more agreement first; at the same agreement, one whose
    mean |Δprob| is within the gate's bar, and of those the faster (a slower copy with probabilities
    0.0001 closer is no better: on the demo, 9 nodes in FP32 at 1.13x against none at 1.50x); else
    the closer probabilities."""
    within = a.mean_abs_dprob <= registry.MAX_INT8_MEAN_DPROB
    return (a.agreement, within, a.speedup if within else -a.mean_abs_dprob)


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
               + ("" if passing else f"; its best agreement was {registry.agreement_percent(chosen.agreement)} (95% LB "
                  f"{chosen.agreement_lb:.1%}), mean |Δprob| {chosen.mean_abs_dprob:.4f}"))
    else:
        # the copy kept is the best one that is fast enough: a slower one would never be worth enabling
        chosen = max((a for a in attempts if a.speedup >= min_speedup), key=_closest_then_fastest)
        enable = False
        kept = sorted({n for a in attempts for n in a.keep_fp32})
        limit = ("the time budget ran out" if exhausted else
                 "the speed-up was gone" if any(a.speedup < min_speedup for a in attempts) else
                 "no recipe left to try")
        slow = max(attempts, key=_closest_then_fastest)
        slower = ("" if slow.agreement <= chosen.agreement else
                  f"; {registry.agreement_percent(slow.agreement)} took {len(slow.keep_fp32)} node(s) in FP32, "
                  f"at only {slow.speedup:.2f}x")
        why = (f"the gate was not met ({limit}; {len(attempts)} attempt(s) in {seconds:.0f} s of a "
               f"{budget_s:.0f} s budget): best agreement at ≥ {min_speedup:.2f}x FP32 "
               f"{registry.agreement_percent(chosen.agreement)} (95% LB {chosen.agreement_lb:.1%}), mean |Δprob| {chosen.mean_abs_dprob:.4f} with "
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
