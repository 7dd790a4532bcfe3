"""Writes INT8 models of one prepared FP32 graph with onnxruntime, for the accuracy-aware search
(int8_search): a Recipe (calibration method, nodes kept in FP32, matrix-product weights) → a QDQ or
dynamic model, its biases corrected for the 8-bit weights' mean shift (bias_correction), its logits
left float (output_ops); one calibration per (method, set of photos), cached on disk.

What the CPU and the graph decide: whether 8-bit products saturate here (saturating_cpu) and which
weights that touches (matrix_weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# calibration methods onnxruntime offers → (its CalibrationMethod name, its extra options)
CALIBRATION_METHODS = {
    "minmax": ("MinMax", {}),
    "percentile": ("Percentile", {"CalibPercentile": 99.999}),
    "entropy": ("Entropy", {}),
}
# what `auto` tries, in order. Not Entropy: through quantize_static onnxruntime builds its histograms
# with 128 bins for 128 quantized bins, so its KL search has one candidate, the whole range: MinMax's
# (the same scale on all 131 quantized tensors of the demo; the same figures on the demo, a ResNet-50
# and a MobileNetV3). With 2048 bins (not settable there) it cost the demo 25 points of agreement
# (69.8 %, mean |Δprob| 0.44) and took 374 s. `--method entropy` still runs it.
AUTO_METHODS = ("minmax", "percentile")
ALL_PHOTOS = "all"                                    # the cache key of a calibration on every photo


def saturating_cpu(cpuinfo: str | None = None) -> bool:
    """Whether this CPU's 8-bit dot products may saturate: x86 with AVX2 but no VNNI. onnxruntime's
    U8S8 kernels there (VPMADDUBSW) add pairs of uint8 × int8 products into int16, which overflows
    when activations and weights use their full 8 bits (onnxruntime's quantization docs; OpenVINO calls
    it the saturation issue). On this repo's AMD EPYC (avx2, no vnni) the demo's 1×1 convolutions lose
    up to 28 dB of output SQNR against the same QDQ graph run unfused."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False                      # not Linux: unknown; the k-fold figures still judge the result
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                      if line.startswith("flags")), []))
    return "avx2" in flags and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}


def matrix_weights(graph) -> list[str]:
    """The weights whose layers run as 8-bit matrix products, which saturate on such a CPU: those of
    the Conv (not depthwise: MLAS runs those with its own kernel) and Gemm nodes, except a convolution
    fed by the image itself (few input channels; on the demo 7 bits cost it more than the saturation). A recipe's
    `weights` decides what they get there: "int8" cuts them to 7 bits (fast U8S8 kernels, no
    overflow, one bit less), "uint8" quantizes them to uint8 (U8U8 kernels, which widen to int16
    before they multiply and never saturate, as onnxruntime's docs advise on AVX2 without VNNI; all
    8 bits, but slower). On the demo (EfficientNet-Lite0, 12 photos, MinMax, k-fold): int8 with 8 bits
    66.7 % agreement, 7 bits ~75 %, uint8 89.6 %; speed-up on a quiet machine 1.22x (8-bit int8)
    against 1.01x (uint8); ResNet-50 at batch 8: 1.92x against 1.33x."""
    inits = {i.name for i in graph.initializer}
    inputs = {i.name for i in graph.input if i.name not in inits}
    out = []
    for node in graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if (node.op_type in ("Conv", "Gemm") and group == 1 and len(node.input) > 1 and node.input[1] in inits
                and not inputs & set(node.input)):
            out.append(node.input[1])
    return out


def output_ops(model_path: Path) -> list[str]:
    """The op types of the matrix products whose output is the graph's (a classifier's Gemm: its logits).
    Their outputs stay float: logits rounded to 256 steps flip the top-1 of near-ties (on the demo
    with its stem in FP32: 95.3 → 96.4 % agreement, mean |Δprob| 0.0212 → 0.0195, at the same speed).
    onnxruntime leaves the output of every node of these types float, one Gemm in most classifiers."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    outputs = {o.name for o in graph.output}
    return sorted({n.op_type for n in graph.node if n.op_type in ("Gemm", "MatMul", "Conv") and outputs & set(n.output)})


@dataclass(frozen=True)
class Recipe:
    """One way to quantize: a calibration method (or dynamic) and the nodes kept in FP32."""
    method: str                                  # a CALIBRATION_METHODS key or dynamic
    keep_fp32: tuple[str, ...] = ()
    weights: str = "int8"                        # int8 | uint8: the matrix-product weights on a saturating CPU

    def describe(self) -> str:
        name = "dynamic" if self.method == "dynamic" else CALIBRATION_METHODS[self.method][0]
        return f"{name}{', uint8 weights' if self.weights == 'uint8' else ''}, {len(self.keep_fp32)} node(s) in FP32"


class Quantizer:
    """Writes INT8 models of one prepared FP32 graph with onnxruntime; one calibration per
    (method, set of photos), cached on disk and reused whatever nodes are kept in FP32."""

    def __init__(self, prepared: Path, scratch: Path, *, input_name: str, batch: int,
                 excluded_always: list[str], op_types: list[str] | None = None):
        self.prepared, self.scratch = prepared, scratch
        self.input_name, self.batch = input_name, batch
        self.excluded_always, self.op_types = list(excluded_always), op_types
        self.external = False
        self.matrix_weights: list[str] = []     # matrix_weights(): set on a saturating CPU only
        self.bias_correction = True             # bias_correction.correct() after each static quantization
        self.float_output_ops = output_ops(prepared)
        self.bias_corrected = 0                 # how many convolutions the last write corrected
        self._float_graph = None
        self._means: dict[str, dict] = {}       # cache_key → the FP32 input means of the corrected convolutions

    def write(self, recipe: Recipe, target: Path, calibration: np.ndarray | None, *, cache_key: str) -> Path:
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                              quantize_static)

        exclude = [*self.excluded_always, *recipe.keep_fp32]
        self.bias_corrected = 0
        if recipe.method == "dynamic":
            quantize_dynamic(str(self.prepared), str(target), per_channel=True, weight_type=QuantType.QInt8,
                             nodes_to_exclude=exclude, op_types_to_quantize=self.op_types,
                             use_external_data_format=self.external)
            return target
        name, extra = CALIBRATION_METHODS[recipe.method]
        cache = self.cache_path(recipe.method, cache_key)
        reader = Batches(self.input_name, calibration, self.batch) if not cache.is_file() else None
        extra = dict(extra)
        if self.float_output_ops:
            extra["OpTypesToExcludeOutputQuantization"] = self.float_output_ops
        if self.matrix_weights:                 # per channel (axis 0), as every other weight
            override = ({"quant_type": QuantType.QUInt8} if recipe.weights == "uint8" else {"reduce_range": True})
            extra["TensorQuantOverrides"] = {w: [{**override, "axis": 0}] for w in self.matrix_weights}
        quantize_static(str(self.prepared), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=exclude, op_types_to_quantize=self.op_types,
                        calibrate_method=getattr(CalibrationMethod, name), use_external_data_format=self.external,
                        extra_options=extra, calibration_cache_path=str(cache))
        self.bias_corrected = self._correct_biases(target, calibration, cache_key)
        return target

    def _correct_biases(self, target: Path, calibration: np.ndarray | None, cache_key: str) -> int:
        """Fold the mean shift of the 8-bit weights back into the biases (bias_correction), measured on
        the calibration views that `cache_key` names; not for a graph with external data (its weights
        are too large to hold twice)."""
        if not self.bias_correction or self.external or calibration is None or not len(calibration):
            return 0
        from . import bias_correction

        if self._float_graph is None:
            import onnx

            self._float_graph = onnx.load(str(self.prepared)).graph
        if cache_key not in self._means:
            inputs = [x for x, _, _ in bias_correction.corrected_convs(self._float_graph).values()]
            self._means[cache_key] = bias_correction.input_means(self.prepared, calibration, input_name=self.input_name,
                                                                 batch=self.batch, tensors=inputs)
        return bias_correction.correct(target, self._float_graph, self._means[cache_key])

    def cache_path(self, method: str, cache_key: str) -> Path:
        """onnxruntime's calibration cache of `method` on the photos that `cache_key` names."""
        return self.scratch / f"calib-{method}-{cache_key}.json"

    def calibrate_folds(self, chunks: list[np.ndarray]) -> None:
        """MinMax calibration of k folds with each photo run once, not k-1 times: each chunk's ranges
        are measured once (onnxruntime's own calibrator, with quantize_static's defaults), and fold f's
        are the lowest minimum and the highest maximum over every other chunk, which is what calibrating
        on their union gives. Written as fold f's calibration cache (`cache_key` f"f{f}"), which
        quantize_static then reads instead of calibrating; the union of every chunk is written as
        ALL_PHOTOS's, so the chosen recipe's final calibration on every photo runs no photo again."""
        from onnxruntime.quantization.calibrate import (CalibrationMethod, TensorsData, create_calibrator,
                                                        save_tensors_data)
        from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

        op_types = self.op_types or list(set(QLinearOpsRegistry) | set(QDQRegistry))   # quantize_static's default
        augmented = self.scratch / "augmented.onnx"
        calibrator = create_calibrator(self.prepared, op_types, calibrate_method=CalibrationMethod.MinMax,
                                       augmented_model_path=str(augmented), use_external_data_format=self.external)
        ranges = []
        try:
            for chunk in chunks:            # one augmented model and session for every chunk
                calibrator.calibrate_tensors_range = None      # this chunk's own ranges, not the running merge
                calibrator.collect_data(Batches(self.input_name, chunk, self.batch))
                ranges.append(calibrator.compute_data())
        finally:
            del calibrator
            for leftover in self.scratch.glob(f"{augmented.name}*"):
                leftover.unlink()

        def union(group: list) -> TensorsData:
            return TensorsData(CalibrationMethod.MinMax, {
                name: (np.minimum.reduce([r[name].lowest for r in group]),
                       np.maximum.reduce([r[name].highest for r in group])) for name in group[0].keys()})

        for f in range(len(chunks)):
            save_tensors_data(union([r for g, r in enumerate(ranges) if g != f]), self.cache_path("minmax", f"f{f}"))
        save_tensors_data(union(ranges), self.cache_path("minmax", ALL_PHOTOS))


class Batches:
    """onnxruntime's CalibrationDataReader protocol over preprocessed views."""

    def __init__(self, name: str, arrays: np.ndarray, batch: int):
        self.name, self.arrays, self.batch, self.at = name, arrays, batch, 0

    def get_next(self):
        if self.at >= len(self.arrays):
            return None
        chunk = self.arrays[self.at:self.at + self.batch]
        self.at += len(chunk)
        return {self.name: chunk}

    def rewind(self):
        self.at = 0

    def __len__(self):
        return math.ceil(len(self.arrays) / self.batch)

    def set_range(self, start_index: int, end_index: int):
        self.at = start_index * self.batch

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
