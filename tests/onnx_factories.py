"""Tiny ONNX graphs built in code (onnx.helper), shaped like the models people actually ship:
a WD-style tagger (NHWC float 0–255 in, Sigmoid out, selected_tags.csv, a timm config.json for
its safetensors twin that does not describe the ONNX graph), and a bare NCHW classifier."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

# (name, category): 9 rating, 0 general, 4 character; biases push some tags over the thresholds
WD_TAGS = [("general", 9), ("sensitive", 9), ("questionable", 9), ("explicit", 9),
           ("1girl", 0), ("long_hair", 0), ("^_^", 0), ("smile", 0), ("blue_eyes", 0), ("short_hair", 0),
           ("hatsune_miku", 4), ("kafuu_chino", 4)]
WD_BIAS = [0.5, -0.5, -1.0, -2.0, 2.5, 1.0, 0.8, 0.0, -0.3, -3.0, 4.0, -4.0]


def linear_graph(*, shape, n_out: int, input_name="input", output_name="output", activation: str | None = None,
                 seed: int = 0, scale: float = 0.0002, bias=None, elem_type=None, extra_inputs=()):
    """input (shape) → flatten → MatMul + bias [→ Sigmoid/Softmax]: every pixel counts, so a wrong
    layout, channel order, padding or resize changes the scores."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    features = int(np.prod([d for d in shape[1:] if isinstance(d, int)])) if all(
        isinstance(d, int) for d in shape[1:]) else 3 * 8 * 8
    weight = (rng.standard_normal((features, n_out)) * scale).astype(np.float32)
    b = np.asarray(bias if bias is not None else rng.standard_normal(n_out) * 0.5, np.float32)
    pixels = input_name
    nodes = []
    if elem_type not in (None, TensorProto.FLOAT):     # e.g. uint8/int64 pixels, cast inside the graph
        nodes.append(helper.make_node("Cast", [input_name], ["as_float"], to=TensorProto.FLOAT))
        pixels = "as_float"
    nodes += [helper.make_node("Reshape", [pixels, "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "weight"], ["mm"]),
             helper.make_node("Add", ["mm", "bias"], ["logits" if activation else output_name])]
    if activation:
        nodes.append(helper.make_node({"sigmoid": "Sigmoid", "softmax": "Softmax"}[activation], ["logits"],
                                      [output_name], **({"axis": -1} if activation == "softmax" else {})))
    inputs = [helper.make_tensor_value_info(input_name, elem_type or TensorProto.FLOAT, list(shape))]
    inputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 4]) for name in extra_inputs]
    graph = helper.make_graph(
        nodes, "tiny", inputs, [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", n_out])],
        initializer=[numpy_helper.from_array(np.array([-1, features], np.int64), "flat_shape"),
                     numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(b, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_selected_tags(path: Path, tags=WD_TAGS) -> None:
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tag_id", "name", "category", "count"])
        for i, (name, category) in enumerate(tags):
            w.writerow([470000 + i, name, category, 1000 - i])


def make_wd_tagger(folder: Path, *, size: int = 32, tags=WD_TAGS) -> Path:
    """model.onnx (NHWC size×size float 0–255, ends in Sigmoid) + selected_tags.csv + a timm
    config.json (NCHW 448, mean/std 0.5: the safetensors twin's) + that twin's model.safetensors."""
    import onnx
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = linear_graph(shape=["batch", size, size, 3], n_out=len(tags), input_name="input_1:0",
                         output_name="predictions_sigmoid", activation="sigmoid", bias=WD_BIAS[:len(tags)])
    onnx.save(model, str(folder / "model.onnx"))
    write_selected_tags(folder / "selected_tags.csv", tags)
    (folder / "config.json").write_text(json.dumps({
        "architecture": "vit_base_patch16_224", "num_classes": len(tags), "num_features": 768,
        "global_pool": "avg", "model_args": {"img_size": 448, "class_token": False, "global_pool": "avg"},
        "pretrained_cfg": {"custom_load": False, "input_size": [3, 448, 448], "fixed_input_size": False,
                           "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center",
                           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "num_classes": len(tags)}}))
    save_file({"head.weight": torch.zeros(len(tags), 4)}, str(folder / "model.safetensors"))
    return folder


def wd_reference_scores(model_path: Path, images: list, size: int) -> np.ndarray:
    """The WD tagger Space's own recipe, written out independently with PIL + numpy, run through a
    plain onnxruntime session: the scores imgai must reproduce."""
    import onnxruntime as ort
    from PIL import Image

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    rows = []
    for path in images:
        image = Image.open(path)
        if image.mode != "RGBA":
            image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255))
        canvas.alpha_composite(image)
        image = canvas.convert("RGB")
        max_dim = max(image.size)
        pad_left, pad_top = (max_dim - image.size[0]) // 2, (max_dim - image.size[1]) // 2
        padded = Image.new("RGB", (max_dim, max_dim), (255, 255, 255))
        padded.paste(image, (pad_left, pad_top))
        if max_dim != size:
            padded = padded.resize((size, size), Image.BICUBIC)
        array = np.asarray(padded, dtype=np.float32)[:, :, ::-1]
        name = session.get_inputs()[0].name
        rows.append(session.run([session.get_outputs()[0].name], {name: np.expand_dims(array, 0)})[0][0])
    return np.asarray(rows, dtype=np.float64)


def make_bare_onnx(folder: Path, labels: list[str], *, size: int = 24, layout: str = "NCHW",
                   label_file: str = "labels.txt") -> Path:
    """model.onnx (fixed size, logits out) + a label file, and nothing about preprocessing."""
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = ["batch", 3, size, size] if layout == "NCHW" else ["batch", size, size, 3]
    onnx.save(linear_graph(shape=shape, n_out=len(labels), scale=0.05, seed=3), str(folder / "classifier.onnx"))
    if label_file == "labels.txt":
        (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    else:
        (folder / "labels.json").write_text(json.dumps({str(i): label for i, label in enumerate(labels)}))
    return folder
