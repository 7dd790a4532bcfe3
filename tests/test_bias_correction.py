"""Bias correction: the mean shift that 8-bit weights add to each output channel is taken off the INT8
convolutions' biases, measured on the calibration views; FP32 nodes and dynamic copies are left alone."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from imgai.classify import bias_correction
from imgai.classify.int8_search import Quantizer, Recipe
from imgai.classify.session import create_session


def _coarse(rng, shape) -> np.ndarray:
    """Weights with one outlier per output channel: its 8-bit step is coarse, the rounding error large."""
    w = rng.normal(0, 0.05, shape).astype(np.float32)
    w.reshape(shape[0], -1)[:, 0] = 3.0
    return w


@pytest.fixture
def two_convs(tmp_path):
    """x [N, 8, 12, 12] → a 3×3 convolution (8 → 16) → ReLU → a depthwise 3×3 (16 groups) → y."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(_coarse(rng, (16, 8, 3, 3)), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b1"),
             numpy_helper.from_array(_coarse(rng, (16, 1, 3, 3)), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2", pads=[1, 1, 1, 1], group=16)]
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
    assert (none, count) == (0, 2)                        # both convolutions, the depthwise one included
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
