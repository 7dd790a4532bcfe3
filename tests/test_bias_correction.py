"""Bias correction: the mean shift that 8-bit weights add to each output channel is taken off the INT8
convolutions' biases, measured on the calibration views; FP32 nodes are left alone, and run in FP32."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from imgai.classify import bias_correction
from imgai.classify.int8_quantizer import Quantizer, Recipe
from imgai.classify.session import create_session


def _coarse(rng, shape) -> np.ndarray:
    """Weights with one outlier per output channel: its 8-bit step is coarse, the rounding error large."""
    w = rng.normal(0, 0.05, shape).astype(np.float32)
    w.reshape(shape[0], -1)[:, 0] = 3.0
    return w


@pytest.fixture
def two_convs(tmp_path):
    """x [N, 8, 12, 12] → a 1×1 identity convolution with no bias (a quantized layer, so that a layer
    kept in FP32 after it reads dequantized input) → a 3×3 one (8 → 16) → ReLU → a depthwise 3×3 → ReLU
    → y (not a convolution's own output, which int8_quantizer.output_ops leaves float)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(_coarse(rng, (16, 8, 3, 3)), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b1"),
             numpy_helper.from_array(_coarse(rng, (16, 1, 3, 3)), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b2"),
             numpy_helper.from_array(np.eye(8, dtype=np.float32).reshape(8, 8, 1, 1), "w0")]   # exact in int8
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0"),
             helper.make_node("Conv", ["c0", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], group=16),
             helper.make_node("Relu", ["c2"], ["y"], name="relu2")]
    graph = helper.make_graph(nodes, "two_convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 16, 12, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "float.onnx"
    onnx.save(model, path)
    views = rng.uniform(0, 2, (32, 8, 12, 12)).astype(np.float32)      # a mean far from zero: a visible shift
    return path, views


def _channel_means(path, views) -> np.ndarray:
    return create_session(path).run(None, {"x": views})[0].mean(axis=(0, 2, 3))


def _quantized(path, views, tmp_path, name, *, correct, keep=()) -> tuple:
    scratch = tmp_path / name
    scratch.mkdir()
    quantizer = Quantizer(path, scratch, input_name="x", batch=8, excluded_always=[])
    quantizer.bias_correction = correct
    target = quantizer.write(Recipe("minmax", keep), scratch / "model.onnx", views, cache_key="all")
    return target, quantizer.bias_corrected


def test_the_weights_mean_shift_is_taken_off_the_biases(two_convs, tmp_path):
    path, views = two_convs
    fp32 = _channel_means(path, views)
    plain, none = _quantized(path, views, tmp_path, "plain", correct=False)
    corrected, count = _quantized(path, views, tmp_path, "corrected", correct=True)
    assert (none, count) == (0, 2)        # the two with a bias, the depthwise one included
    shift_plain = np.abs(_channel_means(plain, views) - fp32)
    shift_corrected = np.abs(_channel_means(corrected, views) - fp32)
    assert shift_plain.mean() > 0.05                     # the coarse weights do shift the means
    assert shift_corrected.mean() < shift_plain.mean() / 4
    # only the int32 biases differ: onnxruntime's weights and activation ranges are untouched
    a, b = onnx.load(plain).graph, onnx.load(corrected).graph
    differ = {i.name for i, j in zip(a.initializer, b.initializer) if i.raw_data != j.raw_data or i.int32_data != j.int32_data}
    assert differ and all(numpy_helper.to_array(i).dtype == np.int32 for i in b.initializer if i.name in differ)


def test_a_node_kept_in_fp32_is_left_alone(two_convs, tmp_path):
    path, views = two_convs
    target, count = _quantized(path, views, tmp_path, "keep", correct=True, keep=("conv1",))
    assert count == 1
    graph = onnx.load(target).graph
    assert numpy_helper.to_array(next(i for i in graph.initializer if i.name == "b1")).dtype == np.float32


def test_input_means_are_per_channel_over_every_view(two_convs):
    path, views = two_convs
    means = bias_correction.input_means(path, views, input_name="x", batch=5, tensors=["x", "r1"])
    np.testing.assert_allclose(means["x"], views.mean(axis=(0, 2, 3)), rtol=1e-5)
    assert means["r1"].shape == (16,) and (means["r1"] >= 0).all()


def test_a_node_kept_in_fp32_runs_in_fp32(two_convs, tmp_path):
    """onnxruntime's WeightBiasQuantization would quantize the float weights of a Conv whose input is
    dequantized (per tensor, at session start): the nodes the search keeps in FP32. imgai's sessions
    run the graph as written."""
    import onnxruntime as ort

    path, views = two_convs
    target, _ = _quantized(path, views, tmp_path, "keep", correct=True, keep=("conv1", "relu1"))
    as_written = ort.SessionOptions()
    as_written.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    expected = ort.InferenceSession(str(target), as_written, providers=["CPUExecutionProvider"]).run(None, {"x": views})[0]
    ours = create_session(target).run(None, {"x": views})[0]
    default = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"]).run(None, {"x": views})[0]
    # the fused kernels may round a value to the neighbouring 8-bit step; the re-quantized weights move many
    off = {name: float(np.mean(np.abs(out - expected) > 1e-3)) for name, out in (("ours", ours), ("default", default))}
    assert off["ours"] < 0.001 and off["default"] > 0.1, off
