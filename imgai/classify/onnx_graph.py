"""What an ONNX classifier's graph says about itself: the source of truth for its input.

Read once, before any session exists: the one image input (name, layout from where its 3
channels are, fixed spatial size or None, element type), the number of outputs and the size
of the first, and whether the graph already ends in a Sigmoid or Softmax (then its outputs are
probabilities and imgai must not apply one again). Anything that is not a single float image
input is refused here, naming it.

Also here: where a preprocessing spec disagrees with the graph (`contradictions`), read both by
the preprocessing choice and by validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, UnsupportedModelError, require

if TYPE_CHECKING:
    from .preprocess import PreprocessSpec

FLOAT_TYPES = ("float32", "float16", "float64")
# nodes that pass scores through unchanged in value, between a final activation and the output
_PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}
ACTIVATIONS = {"Sigmoid": "sigmoid", "Softmax": "softmax"}


@dataclass(frozen=True)
class GraphInfo:
    input_name: str
    layout: str | None             # NCHW | NHWC; None when the channel axis is dynamic too
    height: int | None             # None: dynamic in the graph
    width: int | None
    dtype: str                     # float32 | float16 | float64
    outputs: int                   # number of graph outputs (the first one holds the scores)
    output_size: int | None        # classes of the first output, when the graph fixes it
    activation: str | None         # "sigmoid" | "softmax" when the graph applies one, else None (logits)

    @property
    def fixed_size(self) -> bool:
        return self.height is not None and self.width is not None

    def describe(self) -> str:
        size = f"{self.height}×{self.width}" if self.fixed_size else "any size"
        ends = f", ends in {self.activation.capitalize()}" if self.activation else ", outputs logits"
        return f"input {self.input_name!r} {self.layout or 'any layout'} {size} {self.dtype}{ends}"

    def to_dict(self) -> dict:
        return asdict(self)


def _dim(d) -> int | None:
    return d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None


def read_graph(path: Path) -> GraphInfo:
    """The input and outputs of the ONNX model at `path` (no weights loaded). Raises
    UnsupportedModelError naming the input when it is not one float image tensor."""
    onnx = require("onnx", extra="tag")
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UnsupportedModelError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise UnsupportedModelError(f"{path.name} has {len(inputs)} inputs ({names}); imgai tags with models "
                                    "that take exactly one image tensor")
    inp = inputs[0]
    tensor = inp.type.tensor_type
    elem = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "undefined"
    dtype = elem if elem in FLOAT_TYPES else None
    if dtype is None:
        raise UnsupportedModelError(f"{path.name}: input {inp.name!r} is {elem}, not a float tensor; imgai feeds "
                                    "float pixels (float32 or float16)")
    dims = [_dim(d) for d in tensor.shape.dim] if tensor.HasField("shape") else []
    if len(dims) != 4 or (3 not in (dims[1], dims[3]) and (dims[1], dims[3]) != (None, None)):
        shown = "x".join("?" if d is None else str(d) for d in dims) or "no shape"
        raise UnsupportedModelError(f"{path.name}: input {inp.name!r} has shape [{shown}], not an image batch "
                                    "(N, 3, H, W) or (N, H, W, 3)")
    layout = "NCHW" if dims[1] == 3 else "NHWC" if dims[3] == 3 else None   # None: every axis dynamic
    height, width = (dims[1], dims[2]) if layout == "NHWC" else (dims[2], dims[3])
    first = graph.output[0] if graph.output else None
    out_dims = [_dim(d) for d in first.type.tensor_type.shape.dim] if first is not None else []
    return GraphInfo(input_name=inp.name, layout=layout, height=height, width=width, dtype=dtype,
                     outputs=len(graph.output), output_size=out_dims[-1] if len(out_dims) == 2 else None,
                     activation=final_activation(graph, first.name) if first is not None else None)


def final_activation(graph, output_name: str) -> str | None:
    """"sigmoid" or "softmax" when the node that makes `output_name` (through reshapes and
    identities) is one; None when the output is raw logits."""
    producers = {out: node for node in graph.node for out in node.output}
    name, seen = output_name, set()
    while name in producers and name not in seen:
        seen.add(name)
        node = producers[name]
        if node.op_type in ACTIVATIONS:
            return ACTIVATIONS[node.op_type]
        if node.op_type not in _PASS_THROUGH or not node.input:
            return None
        name = node.input[0]
    return None


def check_size(info: GraphInfo, size: tuple[int, int] | None, *, path_name: str = "model.onnx") -> tuple[int, int]:
    """The (height, width) to feed: the graph's, or `size` for a graph with a dynamic one."""
    if info.fixed_size:
        return info.height, info.width
    if size is None:
        raise ConfigError(f"{path_name} accepts any image size and nothing says which one it was trained at; "
                          "give it: `--size N` (or the Size field), or a --preprocess FILE")
    return size


def contradictions(spec: PreprocessSpec, graph: GraphInfo) -> list[str]:
    """Where `spec` disagrees with the graph (empty: it fits)."""
    found = []
    if graph.layout and spec.layout != graph.layout:
        found.append(f"it says {spec.layout} but the graph's input {graph.input_name!r} is {graph.layout}")
    if graph.fixed_size and spec.input_size != (graph.height, graph.width):
        h, w = spec.input_size
        found.append(f"it says {h}×{w} but the graph takes {graph.height}×{graph.width}")
    return found
