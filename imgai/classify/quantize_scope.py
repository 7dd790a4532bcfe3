"""Which nodes of a classifier graph INT8 quantization touches, for CNNs and transformers alike.

A transformer graph (ViT, DeiT, Swin, DINOv2, …) differs from a CNN in two ways that matter to
onnxruntime's quantizer: its attention multiplies two activations (Q·Kᵀ, softmax·V), whose ranges
change per image and lose the answer when rounded to 8 bits, and it normalises with LayerNorm,
which must stay float. So the weights are quantized (every MatMul/Gemm/Conv with a constant
operand: the linear layers, the patch embedding) and the activation-by-activation MatMuls, the
normalisations and the shape arithmetic are left in float. quantize.py passes the result to
`quantize_dynamic` / `quantize_static` as `op_types_to_quantize` and `nodes_to_exclude`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

WEIGHT_OPS = ("Conv", "MatMul", "Gemm")
FLOAT_OPS = ("LayerNormalization", "Softmax", "Erf", "Gelu", "ReduceMean", "Pow", "Sqrt", "Div")


@dataclass
class QuantScope:
    op_types_to_quantize: list[str]
    nodes_to_exclude: list[str] = field(default_factory=list)
    attention_matmuls: int = 0        # activation × activation MatMuls kept in float
    transformer: bool = False         # the graph has attention or LayerNorm

    def to_dict(self) -> dict:
        return {"op_types_to_quantize": self.op_types_to_quantize, "excluded_nodes": len(self.nodes_to_exclude),
                "attention_matmuls_in_float": self.attention_matmuls, "transformer": self.transformer}


def quant_scope(onnx_path: Path, *, shape_only: list[str] | None = None) -> QuantScope:
    """The scope for the graph at `onnx_path`; `shape_only` (quantize.shape_only_nodes) are excluded too."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    constant = {i.name for i in graph.initializer}
    for node in graph.node:              # values computed from constants only (a transposed weight, …)
        if node.op_type == "Constant" or (node.input and all(i in constant or not i for i in node.input)):
            constant.update(node.output)
    excluded = list(shape_only or [])
    attention = 0
    transformer = False
    for node in graph.node:
        if node.op_type in ("LayerNormalization", "Softmax"):
            transformer = True
        if node.op_type == "MatMul" and not any(i in constant for i in node.input):
            attention += 1
            transformer = True
            if node.name:
                excluded.append(node.name)
    return QuantScope(list(WEIGHT_OPS), sorted(set(excluded)), attention, transformer)
