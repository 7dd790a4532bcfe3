"""Multiply-adds per image of an ONNX classifier, counted from its graph (Conv, Gemm, MatMul).

ONNX shape inference with the batch fixed to 1 gives every tensor's shape; a Conv costs
out_elements x (in_channels / groups) x kernel_h x kernel_w, a Gemm/MatMul M x N x K.
Achieved GFLOP/s = images/s x 2 x MACs / 1e9 (one multiply-add = two operations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _dims(value_info) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def macs_per_image(onnx_path: Path, input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    first = next(i for i in graph.input if i.name not in inits)
    for dim, size in zip(first.type.tensor_type.shape.dim, input_shape):   # batch 1, the image size
        dim.dim_value = size
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)   # Shape→Gather→Reshape chains (ViT)
    shapes = {v.name: _dims(v) for v in list(inferred.graph.value_info) + list(inferred.graph.input)
              + list(inferred.graph.output)}
    shapes.update({name: list(numpy_helper.to_array(t).shape) for name, t in inits.items()})
    total = 0
    for node in inferred.graph.node:
        if node.op_type == "Conv":
            weight, out = shapes.get(node.input[1]), shapes.get(node.output[0])
            if weight and out:
                total += int(np.prod(out)) * int(np.prod(weight[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
            if a and out:
                k = a[0] if node.op_type == "Gemm" and any(at.name == "transA" and at.i for at in node.attribute) else a[-1]
                total += int(np.prod(out)) * k
    return total
