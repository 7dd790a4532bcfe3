"""Bias correction: fold the mean shift that 8-bit weights add back into each INT8 convolution's bias.

A weight rounded to 8 bits is off by its rounding error ΔW. On the inputs a layer typically sees, that
adds ΔW·E[x] to every output channel, much the same on every photo: a bias. Measured on the calibration
photos (E[x] per input channel, from the FP32 graph), it is taken off the quantized layer's bias
(empirical bias correction: Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and
Bias Correction"; OpenVINO's NNCF applies it by default as FastBiasCorrection). onnxruntime quantizes
the weights; this only rewrites the int32 biases of the QDQ graph it wrote.

On the demo (EfficientNet-Lite0, 12 photos, 4-fold, MinMax, AVX-512 VNNI) it halves the mean |Δprob|
(0.043 → 0.025) and the largest (0.32 → 0.13); top-1 agreement 94.3 → 95.3 %: most of the views that
still flip are near-ties, whose two best labels FP32 itself puts within 0.03 of each other.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def corrected_convs(float_graph) -> dict[str, tuple[str, str, str]]:
    """Conv nodes with a constant weight and bias: name → (input tensor, weight, bias) in the FP32 graph."""
    inits = {i.name for i in float_graph.initializer}
    return {n.name: (n.input[0], n.input[1], n.input[2]) for n in float_graph.node
            if n.op_type == "Conv" and n.name and len(n.input) > 2 and n.input[1] in inits and n.input[2] in inits}


def input_means(float_path: Path, arrays: np.ndarray, *, input_name: str, batch: int,
                tensors: list[str]) -> dict[str, np.ndarray]:
    """The mean of each of `tensors` per channel (axis 1) over `arrays`, run through the FP32 graph."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(float_path))
    known = {o.name for o in model.graph.output}
    wanted = list(dict.fromkeys(tensors))
    for name in wanted:
        if name not in known:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del model
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for start in range(0, len(arrays), batch):
        for name, value in zip(wanted, session.run(wanted, {input_name: arrays[start:start + batch]})):
            sums[name] = sums.get(name, 0) + value.sum(axis=tuple(a for a in range(value.ndim) if a != 1),
                                                       dtype=np.float64)
            counts[name] = counts.get(name, 0) + value.size // value.shape[1]
    return {name: sums[name] / counts[name] for name in sums}


def correct(qdq_path: Path, float_graph, means: dict[str, np.ndarray]) -> int:
    """Rewrite the int32 bias of every quantized Conv of the QDQ model at `qdq_path` (in place) so that
    its output's mean per channel matches FP32's on the inputs whose `means` were measured; returns how
    many were corrected. A Conv kept in FP32 has float weights and
    is left alone."""
    import onnx
    from onnx import numpy_helper

    convs = corrected_convs(float_graph)
    floats = {i.name: i for i in float_graph.initializer}
    model = onnx.load(str(qdq_path))
    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}

    def dequantized(tensor: str, kinds: tuple) -> tuple[np.ndarray, np.ndarray, onnx.TensorProto] | None:
        """(float values, scale, quantized initializer) of a constant that a DequantizeLinear feeds."""
        node = producer.get(tensor)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            return None
        q = numpy_helper.to_array(inits[node.input[0]])
        if q.dtype not in kinds:
            return None
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        zero = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64) if len(node.input) > 2 else np.zeros(())
        if scale.ndim:                                   # per channel, along the node's axis
            shape = [1] * q.ndim
            shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (q - zero) * scale, scale, inits[node.input[0]]

    done = 0
    for node in model.graph.node:
        if node.op_type != "Conv" or node.name not in convs or len(node.input) < 3:
            continue
        x, w_name, b_name = convs[node.name]
        weight = dequantized(node.input[1], (np.int8, np.uint8))
        bias = dequantized(node.input[2], (np.int32,))
        if weight is None or bias is None or x not in means:
            continue
        w_float = numpy_helper.to_array(floats[w_name]).astype(np.float64)
        b_float = numpy_helper.to_array(floats[b_name]).astype(np.float64)
        error = (weight[0] - w_float).sum(axis=tuple(range(2, w_float.ndim)))      # [out, in / group]
        mu = means[x].astype(np.float64)
        out_channels, per_group = error.shape
        groups = max(1, mu.size // per_group)
        # output channel o of group g reads input channels g·per_group … (g+1)·per_group − 1
        mu_of_out = mu.reshape(groups, per_group)[np.arange(out_channels) // (out_channels // groups)]
        shift = (error * mu_of_out).sum(axis=1)
        _, bias_scale, bias_tensor = bias
        new = np.round((b_float - shift) / bias_scale)
        info = np.iinfo(np.int32)
        bias_tensor.CopyFrom(numpy_helper.from_array(np.clip(new, info.min, info.max).astype(np.int32),
                                                     bias_tensor.name))
        done += 1
    if done:               # a candidate in the search's scratch folder: the copy that is kept is staged
        onnx.save(model, str(qdq_path))
    return done
