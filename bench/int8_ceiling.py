"""Where the demo's INT8 error comes from: weights or activations, side by side in one run.

    python bench/int8_ceiling.py

The demo model (EfficientNet-Lite0, real ImageNet weights) and the 12 scikit-image photos of
bench/int8_search.py, judged exactly as `models quantize` judges a copy (int8_search.Search: 4 folds,
192 views, each fold's model calibrated on the other folds' photos). One MinMax QDQ model per fold,
written by imgai's own Quantizer (per-channel int8 weights, biases corrected, logits float), is run
three ways:

- int8:             as written: weights and activations in 8 bits (the search's first attempt);
- weights only:     the same 8-bit weights, every activation's QuantizeLinear/DequantizeLinear pair
                    replaced by a Clip to its calibrated range (activations float, not rounded);
- activations only: the same activation quantization, the FP32 weights and biases put back;

and, as the floor of numerical noise, FP32 with its weights rounded to FP16. Each row gives top-1
agreement with FP32 (95 % Wilson lower bound), flips (how many are near-ties: FP32's two best labels
within 0.02), mean and max |Δprob|; the last line is key=value. What it shows: if activations alone
already flip more views than the 99 % gate allows (1 of 192), no choice of weight rounding or
calibration of the weights can reach it, and only keeping activations in FP32 (at the cost of the
speed-up) can.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def without_activation_rounding(model) -> int:
    """Replace every QuantizeLinear → DequantizeLinear pair on an activation by a Clip to the range it
    represents: the activation keeps its calibrated range (onnxruntime drops a ReLU6 whose range the
    quantization already clips) but is no longer rounded to 256 steps; the weights' DequantizeLinear
    nodes stay. Returns the pairs replaced."""
    from onnx import helper, numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes, replaced = [], 0
    for node in model.graph.node:
        dqs = consumers.get(node.output[0], []) if node.op_type == "QuantizeLinear" else []
        if node.op_type == "DequantizeLinear" and node.input[0] not in inits:
            continue                                       # replaced with its QuantizeLinear
        if not dqs or any(d.op_type != "DequantizeLinear" for d in dqs) or node.input[1] not in inits:
            nodes.append(node)
            continue
        scale = inits[node.input[1]].astype(np.float32)
        zero = inits[node.input[2]] if len(node.input) > 2 else np.zeros((), np.uint8)
        info = np.iinfo(zero.dtype)
        bounds = [(np.float32(limit) - zero.astype(np.float32)) * scale for limit in (info.min, info.max)]
        names = []
        for which, value in zip(("min", "max"), bounds):
            names.append(f"{node.output[0]}_clip_{which}")
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.float32), names[-1]))
        for dq in dqs:
            nodes.append(helper.make_node("Clip", [node.input[0], *names], [dq.output[0]],
                                          name=f"{dq.name}_as_clip"))
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return replaced


def with_float_weights(model, float_model) -> int:
    """Feed every quantized Conv/Gemm/MatMul its FP32 weight and bias again (their DequantizeLinear
    nodes are left unused). Returns how many inputs were put back."""
    from onnx import numpy_helper

    floats = {i.name: i for i in float_model.graph.initializer}
    float_nodes = {n.name: n for n in float_model.graph.node if n.name}
    producer = {o: n for n in model.graph.node for o in n.output}
    restored = 0
    for node in model.graph.node:
        original = float_nodes.get(node.name)
        if node.op_type not in ("Conv", "Gemm", "MatMul") or original is None:
            continue
        for k in range(1, min(len(node.input), len(original.input))):
            dq = producer.get(node.input[k])
            if dq is None or dq.op_type != "DequantizeLinear" or original.input[k] not in floats:
                continue
            name = original.input[k] + "_fp32"
            if all(i.name != name for i in model.graph.initializer):
                model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(floats[original.input[k]]), name))
            node.input[k] = name
            restored += 1
    return restored


def fp16_weights(float_model) -> None:
    from onnx import numpy_helper

    for init in float_model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.ndim > 1:
            init.CopyFrom(numpy_helper.from_array(w.astype(np.float16).astype(np.float32), init.name))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="int8-ceiling-"))
    os.environ["IMGAI_HOME"] = str(work / "home")
    os.environ.pop("IMGAI_NO_DEMO", None)
    import onnx
    from int8_search import photo_folder, prepare

    from imgai import registry
    from imgai.classify import calibration, int8_search
    from imgai.classify.int8_quantizer import Recipe
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.classify.quantize import (CALIBRATION_BATCH, _input_batch, prepare_graph, quant_plan,
                                         shape_only_nodes)

    t0 = time.time()
    photos = photo_folder(work / "photos")
    model = registry.get(prepare("demo", work))
    source = Path(model.onnx_path).parent
    spec = PreprocessSpec.load(source / "preprocess.json")
    views = calibration.photo_views([str(p) for p in sorted(photos.iterdir())], spec,
                                    per_image=calibration.VALIDATION_VIEWS)
    scratch = work / "search"
    scratch.mkdir()
    prepared = prepare_graph(source / "model.onnx", scratch / "prepared.onnx", lambda message, **kw: None)
    plan = quant_plan(prepared, method="minmax", shape_only=shape_only_nodes(prepared))
    name, fixed = _input_batch(source / "model.onnx")
    search = int8_search.Search(source, prepared, views, scratch, input_name=name, batch=fixed or CALIBRATION_BATCH,
                                excluded_always=plan.excluded, calibration_views=calibration.CALIBRATION_VIEWS,
                                op_types=plan.op_types, speed_rounds=1)
    float_model = onnx.load(str(prepared))
    write = search.quantizer.write
    rows = {}

    def run(label: str, transform) -> None:
        def written(recipe, target, calib, *, cache_key):
            path = write(recipe, target, calib, cache_key=cache_key)
            qdq = onnx.load(str(path))
            transform(qdq)
            onnx.save(qdq, str(path))
            return path

        search.quantizer.write = written
        a = search.evaluate(Recipe("minmax"))
        rows[label] = a
        print(f"{label:>17}: agreement {registry.agreement_percent(a.agreement)} (95% LB {a.agreement_lb:.1%}), {a.flips} flips "
              f"({a.near_tie_flips} near-ties; {a.near_ties} near-tie views of {a.views}), mean |Δprob| "
              f"{a.mean_abs_dprob:.4f}, max {a.max_abs_dprob:.4f}", flush=True)

    run("int8", lambda qdq: None)
    run("weights only", without_activation_rounding)
    run("activations only", lambda qdq: with_float_weights(qdq, float_model))

    def fp16(qdq):                       # the FP32 graph with FP16-rounded weights, in the candidate's place
        qdq.CopyFrom(float_model)
        fp16_weights(qdq)

    run("fp16 weights", fp16)
    n = rows["int8"].views
    print(f"in {time.time() - t0:.0f} s; a {registry.MIN_INT8_AGREEMENT:.0%} gate allows "
          f"{int(n * (1 - registry.MIN_INT8_AGREEMENT) + 1e-9)} flip(s) of {n} views")
    print(" ".join(f"{k.replace(' ', '_')}_agreement={a.agreement:.4f} {k.replace(' ', '_')}_flips={a.flips} "
                   f"{k.replace(' ', '_')}_mean_dprob={a.mean_abs_dprob:.4f}" for k, a in rows.items()))


if __name__ == "__main__":
    main()
