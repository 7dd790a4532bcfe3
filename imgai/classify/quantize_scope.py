"""Which nodes of a classifier graph INT8 quantization touches, for CNNs and transformers alike.

A transformer graph (ViT, DeiT, Swin, DINOv2, …) differs from a CNN in two ways that matter to
onnxruntime's quantizer: its attention multiplies two activations (Q·Kᵀ, softmax·V), whose ranges
change per image and lose the answer when rounded to 8 bits, and it normalises with LayerNorm,
which must stay float. So the weights are quantized (every MatMul/Gemm/Conv with a constant
operand: the linear layers, the patch embedding) and the activation-by-activation MatMuls, the
normalisations and the shape arithmetic are left in float. quantize.py passes the result to
`quantize_dynamic` / `quantize_static` as `op_types_to_quantize` and `nodes_to_exclude`.

`quant_plan` is the one place that decides, per graph, what the INT8 search tries:

    CNN graph          onnxruntime's default op types; `auto` = the calibration methods (static QDQ)
    transformer graph  WEIGHT_OPS only, attention MatMuls excluded (LayerNorm, Softmax, GELU, Add stay
                       float as a consequence); `auto` = MinMax, then dynamic (weights per channel,
                       activations quantized per batch at run time), then the other calibration methods

Static MinMax comes first because static is the faster INT8 where it keeps the answers; dynamic
next, because it costs one quantization (no calibration, one model serves every fold) and its
per-batch activation ranges follow a transformer's outlier activations that one calibrated range
clips; Percentile last (its histograms cost minutes on a ViT). The k-fold gate decides
on the user's photos; neither static nor dynamic is assumed to keep the answers.

Static QDQ quantizes a tensor once for all its consumers (one Q/DQ pair), so a float node that
shares its input with a quantized one reads the 8-bit value: EfficientFormerV2's V feeds both its
local Conv and an attention MatMul. The MatMul still computes in float; the gate judges the result.
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
    float_ops: list[str] = field(default_factory=list)   # FLOAT_OPS the graph holds (they stay float)

    def to_dict(self) -> dict:
        return {"op_types_to_quantize": self.op_types_to_quantize, "excluded_nodes": len(self.nodes_to_exclude),
                "attention_matmuls_in_float": self.attention_matmuls, "transformer": self.transformer,
                "float_ops": self.float_ops}


@dataclass
class QuantPlan:
    """What the INT8 search of one graph tries: `methods` in order, `op_types` (None: onnxruntime's
    default set), `excluded` nodes never quantized; `scope` is what was found in the graph."""
    scope: QuantScope
    methods: list[str]
    op_types: list[str] | None
    excluded: list[str]

    def to_dict(self) -> dict:
        """The record kept in the INT8 model's `quantization` settings (models show, the card)."""
        family = ("transformer" if self.scope.attention_matmuls else "layernorm" if self.scope.transformer
                  else "cnn")          # layernorm: a CNN that normalises with LayerNorm (ConvNeXt, …)
        return {**self.scope.to_dict(), "family": family,
                "op_types_to_quantize": self.op_types, "methods": self.methods}


def quant_plan(onnx_path: Path, *, method: str, op_types: list[str] | None = None,
               shape_only: list[str] | None = None) -> QuantPlan:
    """The plan for the graph at `onnx_path` and `--method` (auto, a calibration method or dynamic);
    `op_types` given by the caller win over the scope's."""
    from .int8_quantizer import AUTO_METHODS

    scope = quant_scope(onnx_path, shape_only=shape_only)
    if method == "auto":
        first, *others = AUTO_METHODS
        methods = [first, "dynamic", *others] if scope.transformer else list(AUTO_METHODS)
    else:
        methods = [method]
    chosen_ops = op_types if op_types is not None else (scope.op_types_to_quantize if scope.transformer else None)
    return QuantPlan(scope, methods, chosen_ops, scope.nodes_to_exclude)


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
    float_ops = sorted({n.op_type for n in graph.node if n.op_type in FLOAT_OPS})
    for node in graph.node:
        if node.op_type in ("LayerNormalization", "Softmax"):
            transformer = True
        if node.op_type == "MatMul" and not any(i in constant for i in node.input):
            attention += 1
            transformer = True
            if node.name:
                excluded.append(node.name)
    return QuantScope(list(WEIGHT_OPS), sorted(set(excluded)), attention, transformer, float_ops)


def scope_text(record: dict) -> str:
    """A plan's record (QuantPlan.to_dict) in words, for `models show`, the job's events and the card."""
    ops = record.get("op_types_to_quantize")
    what = f"INT8 on {', '.join(ops)}" if ops else "INT8 on onnxruntime's default op types"
    attention = record.get("attention_matmuls_in_float")
    kept = [f"{attention} attention MatMul(s)"] if attention else []
    kept += record.get("float_ops") or []
    return what + (f"; in float: {', '.join(kept)}" if kept else "") + \
        (f"; tried: {', '.join(record['methods'])}" if record.get("methods") else "")
