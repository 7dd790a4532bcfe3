"""Families offered because the sweep converted them: add → convert → tag for a representative set,
from folders in the exact format the Hub serves (config.json + model.safetensors + the family's
own preprocessor_config.json, or timm's config.json with its pretrained_cfg); detection follows the
support table row by row; what is not offered is refused with the reason and nothing registered."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imgai import registry
from imgai.classify.architectures import SUPPORT, Refused, detect_config
from imgai.errors import UnsupportedModelError
from tests.factories import LABELS, _calibrate_bn, _hf_labels, random_image
from tests.hub_fixtures import fake_hub, fake_hub_server, fake_hub_template  # noqa: F401  (fixtures)


def _transformers(model_type: str):
    import transformers as tf

    vit = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, image_size=32,
               patch_size=8)
    crop = dict(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    return {
        "vit": lambda: (tf.ViTForImageClassification(tf.ViTConfig(**vit, **_hf_labels())),
                        tf.ViTImageProcessor(size={"height": 32, "width": 32})),
        "deit": lambda: (tf.DeiTForImageClassification(tf.DeiTConfig(**vit, **_hf_labels())),
                         tf.DeiTImageProcessor(size={"height": 36, "width": 36}, crop_size={"height": 32, "width": 32})),
        "beit": lambda: (tf.BeitForImageClassification(tf.BeitConfig(**vit, use_mean_pooling=True, **_hf_labels())),
                         tf.BeitImageProcessor(size={"height": 32, "width": 32}, do_center_crop=False)),
        "swin": lambda: (tf.SwinForImageClassification(tf.SwinConfig(
                             image_size=32, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4,
                             **_hf_labels())), tf.ViTImageProcessor(size={"height": 32, "width": 32})),
        "convnext": lambda: (tf.ConvNextForImageClassification(tf.ConvNextConfig(
                                 hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, **_hf_labels())),
                             tf.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)),
        "dinov2": lambda: (tf.Dinov2ForImageClassification(tf.Dinov2Config(
                               hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=1, image_size=32,
                               patch_size=8, **_hf_labels())), tf.BitImageProcessor(**crop)),
        "regnet": lambda: (tf.RegNetForImageClassification(tf.RegNetConfig(
                               embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], groups_width=8, **_hf_labels())),
                           tf.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)),
    }[model_type]()


TIMM = {   # the architecture, shrunk by create_model keywords as a fine-tune's config.json records them
    "convnext_atto": {"depths": [1, 1, 1, 1], "dims": [8, 16, 24, 32]},
    "vit_tiny_patch16_224": {"img_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "efficientformerv2_s0": {"depths": [1, 1, 1, 1], "embed_dims": [8, 16, 24, 32], "img_size": 64},
}
CASES = [("transformers", t) for t in ("vit", "deit", "beit", "swin", "convnext", "dinov2", "regnet")] + \
        [("timm", a) for a in TIMM]


def _calibrate(model) -> None:
    import torch

    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        _calibrate_bn(model)   # only BatchNorm needs it (it runs 64×64 batches)


def build(library: str, name: str, folder):
    """A tiny randomly initialised `name` saved as the Hub serves it."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    if library == "transformers":
        model, processor = _transformers(name)
        _calibrate(model)
        model.eval().save_pretrained(folder, safe_serialization=True)
        processor.save_pretrained(folder)
        return folder
    import timm
    from timm.models._hub import save_for_hf

    model = timm.create_model(name, pretrained=False, num_classes=len(LABELS), **TIMM[name])
    _calibrate(model)
    side = TIMM[name].get("img_size", 32)
    save_for_hf(model.eval(), folder, model_config={"label_names": LABELS}, model_args=TIMM[name],
                safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"]["input_size"] = [3, side, side]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("family-images")
    return [random_image(folder / f"img{i}.png", size=(70, 50), seed=i) for i in range(2)]


@pytest.mark.parametrize("library, name", CASES, ids=[f"{lib}-{n}" for lib, n in CASES])
def test_add_convert_tag(library, name, imgai_home, tmp_path, images):
    from imgai.classify.convert import convert
    from imgai.classify.tag import TagOptions, tag
    from imgai.sources import add_model

    folder = build(library, name, tmp_path / name)
    model = add_model(str(folder), name=name)
    assert (model.library, model.type, model.conversion) == (library, registry.PYTORCH, registry.NOT_CONVERTED)
    model = convert(model.id)
    assert (model.type, model.conversion, model.error) == (registry.ONNX, registry.CONVERTED, None)
    assert model.validation["passed"] and model.validation["top1_agreement"] == 1.0
    results = tag(images, model_id=model.id, options=TagOptions(top_k=3))
    for r in results:
        assert r.error is None and {t.label for t in r.tags} == set(LABELS)
        assert np.isclose(sum(t.score for t in r.tags), 1.0, atol=1e-4)


def _config_of(row) -> dict:
    if row.library == "transformers":
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

        head = MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES[row.name]
        return {"model_type": row.name, "architectures": [head[0] if isinstance(head, tuple) else head]}
    return {"architecture": row.name}


@pytest.mark.parametrize("row", SUPPORT, ids=[f"{r.library}-{r.name}" for r in SUPPORT])
def test_detection_follows_the_support_table(row):
    """Each row the sweep passed is taken with its family; each it failed is refused with its reason."""
    config = _config_of(row)
    if row.passed:
        assert detect_config(config).family == row.family
    else:
        with pytest.raises(Refused, match="failed imgai's conversion sweep") as info:
            detect_config(config)
        assert info.value.category == "failed" and row.reason[:40] in str(info.value)


def test_the_sweep_table_covers_the_families_people_pick():
    passed = {(r.library, r.name) for r in SUPPORT if r.passed}
    for case in CASES:
        assert case in passed, case
    assert sum(r.passed for r in SUPPORT) >= 100 and len({r.family for r in SUPPORT if r.passed}) >= 70


@pytest.mark.parametrize("config, category, message", [
    ({"model_type": "vit", "architectures": ["ViTForImageClassification"],
      "auto_map": {"AutoModelForImageClassification": "modeling_mine.MyViT"}}, "custom_code", "modeling_mine.MyViT"),
    ({"model_type": "detr", "architectures": ["DetrForObjectDetection"]}, "head",
     "imgai takes image-classification heads"),
    ({"model_type": "segformer", "architectures": ["SegformerForSemanticSegmentation"]}, "head",
     "a segmentation head"),
    ({"model_type": "llama", "architectures": ["LlamaForImageClassification"]}, "unsupported", "'llama'"),
    ({"architecture": "not_a_timm_model_xyz"}, "unsupported", "'not_a_timm_model_xyz'"),
])
def test_refused_configs_name_the_reason(config, category, message):
    with pytest.raises(Refused, match=message) as info:
        detect_config(config)
    assert info.value.category == category


def test_refused_add_registers_nothing(imgai_home, tmp_path):
    from imgai.sources import add_model

    folder = build("transformers", "vit", tmp_path / "custom")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "modeling_mine.MyViT"}
    (folder / "config.json").write_text(json.dumps(config))
    failed = next((r for r in SUPPORT if r.library == "transformers" and not r.passed), None)
    with pytest.raises(UnsupportedModelError, match="auto_map"):
        add_model(str(folder), name="custom")
    if failed is not None:
        config.pop("auto_map")
        config.update(_config_of(failed))
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(UnsupportedModelError, match="failed imgai's conversion sweep"):
            add_model(str(folder), name="failed")
    assert registry.list_models() == []
    assert not any((imgai_home / "models").glob("*")) if (imgai_home / "models").exists() else True


def test_large_graph_uses_external_data_and_stays_one_model(fake_hub, imgai_home, tmp_path, images, monkeypatch):
    """A graph over the limit (lowered here instead of building 2 GB) is model.onnx + model.onnx_data:
    validated, tagged, pushed and removed together; a missing or escaping data file is refused."""
    from huggingface_hub import HfApi

    from imgai.classify import convert as convert_module
    from imgai.classify.onnx_file import external_data_files
    from imgai.classify.tag import TagOptions, tag
    from imgai.classify.validate import validate
    from imgai.hub import push_model
    from imgai.removal import plan_removal, remove_model
    from imgai.sources import add_model

    monkeypatch.setattr(convert_module, "EXTERNAL_DATA_LIMIT", 4096)
    model = add_model(str(build("transformers", "vit", tmp_path / "vit")), name="big-vit")
    model = convert_module.convert(model.id)
    onnx_dir = imgai_home / "models" / model.id / "onnx"
    assert {"model.onnx", "model.onnx_data"} <= {p.name for p in onnx_dir.iterdir()}
    assert external_data_files(onnx_dir / "model.onnx") == [(onnx_dir / "model.onnx_data").resolve()]
    assert model.validation["passed"] and model.extra["external_data"] is True
    assert model.extra["onnx_bytes"] == sum(p.stat().st_size for p in onnx_dir.glob("model.onnx*"))
    assert all(r.error is None for r in tag(images, model_id=model.id, options=TagOptions(top_k=1)))

    result = push_model(model.id, "alice/big-vit-onnx")
    assert {"model.onnx", "model.onnx_data"} <= {f.path for f in result.files}
    assert {"model.onnx", "model.onnx_data"} <= {f.path for f in HfApi().list_repo_tree("alice/big-vit-onnx")}

    data = onnx_dir / "model.onnx_data"
    data.rename(tmp_path / "moved")
    assert "model.onnx_data, which is missing" in " ".join(validate(model.id).problems)
    (tmp_path / "moved").rename(data)
    import onnx

    graph = onnx.load(str(onnx_dir / "model.onnx"), load_external_data=False)
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../escape.bin"
    onnx.save_model(graph, str(onnx_dir / "model.onnx"))
    assert "outside its folder; refused" in " ".join(validate(model.id).problems)

    plan = plan_removal(model.id)
    remove_model(model.id, confirm=model.id)
    assert registry.list_models() == [] and not onnx_dir.exists() and plan


def test_int8_scope_of_a_vit_quantizes_weights_and_keeps_attention_and_layernorm_float(imgai_home, tmp_path):
    """What imgai.classify.quantize hands onnxruntime for a transformer graph: the linear layers
    and the patch embedding in INT8, Q·Kᵀ and softmax·V and LayerNorm in float; the answers kept."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from imgai.classify.convert import convert
    from imgai.classify.quantize_scope import quant_scope
    from imgai.sources import add_model

    model = convert(add_model(str(build("transformers", "vit", tmp_path / "vit")), name="vit").id)
    fp32 = model.onnx_path
    scope = quant_scope(fp32)
    assert scope.transformer and scope.attention_matmuls == 2          # one layer: Q·Kᵀ and softmax·V
    int8 = tmp_path / "int8.onnx"
    quantize_dynamic(fp32, str(int8), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=scope.op_types_to_quantize, nodes_to_exclude=scope.nodes_to_exclude)
    nodes = onnx.load(str(int8)).graph.node
    assert sum(n.op_type in ("MatMulInteger", "ConvInteger") for n in nodes) >= 4     # the weights are INT8
    assert sum(n.op_type == "MatMul" for n in nodes) == 2 and any(n.op_type == "LayerNormalization" for n in nodes)
    x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    a, b = (ort.InferenceSession(str(p)).run(None, {"pixel_values": x})[0] for p in (fp32, int8))
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.9 and np.abs(a - b).max() < 0.1 * np.abs(a).max()


def _converted(library: str, name: str, tmp_path):
    """`name` built, added and converted, and a folder of 4 real photos to calibrate and judge INT8."""
    from imgai.classify.convert import convert
    from imgai.sources import add_model
    from tests.factories import photo

    model = convert(add_model(str(build(library, name, tmp_path / name)), name=name).id)
    folder = tmp_path / "calibration"
    folder.mkdir()
    for photo_name in ("astronaut", "chelsea", "coffee", "rocket"):
        photo(photo_name, folder)
    return model, folder


def _float_nodes(path, op_type: str) -> int:
    """How many `op_type` nodes of the QDQ graph at `path` take no quantized activation (no input
    from a QuantizeLinear → DequantizeLinear pair): the ones INT8 left in float. (A random-init
    ViT's zero biases share one initializer, so a LayerNorm may read the patch embedding's
    dequantized zero bias: a constant, exact.)"""
    import onnx

    graph = onnx.load(str(path)).graph
    quantized = {n.output[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in quantized}
    return sum(n.op_type == op_type and not dequantized & set(n.input) for n in graph.node)


def test_models_quantize_a_vit_static_weights_int8_attention_and_layernorm_float(imgai_home, tmp_path, cli):
    """`imgai models quantize` on a transformer graph (the plan: quantize_scope.quant_plan): the
    linear layers and the patch embedding in INT8, Q·Kᵀ, softmax·V, LayerNorm and Softmax in float;
    auto tries MinMax, dynamic, then the other calibration methods; the scope and the agreement are
    recorded and shown. A budget this small runs one attempt (MinMax); --force enables it whatever
    its figures, so that it can tag."""
    model, folder = _converted("transformers", "vit", tmp_path)
    code, out, err = cli("models", "quantize", model.id, "--calibration", folder, "--budget", "0.01", "--force",
                         "--wait", "--json")
    job = json.loads(out)
    assert code == 0 and job["state"] == "succeeded", job["error"]
    new = registry.get(f"{model.id}-int8")
    assert (new.type, new.precision, new.valid, new.enabled) == ("ONNX", "int8", True, True)
    settings = new.extra["quantization"]
    scope = settings["scope"]
    assert (scope["family"], scope["transformer"], scope["attention_matmuls_in_float"]) == ("transformer", True, 2)
    assert scope["op_types_to_quantize"] == ["Conv", "MatMul", "Gemm"]
    assert scope["methods"] == ["minmax", "dynamic", "percentile"]
    assert {"LayerNormalization", "Softmax"} <= set(scope["float_ops"])
    assert settings["format"] == "QDQ" and settings["calibrate_method"] == "MinMax"

    onnx_path = new.onnx_path
    import onnx

    ops = [n.op_type for n in onnx.load(onnx_path).graph.node]
    assert ops.count("DequantizeLinear") >= 4                                # the weights are INT8
    assert _float_nodes(onnx_path, "MatMul") == 2                            # Q·Kᵀ and softmax·V
    assert _float_nodes(onnx_path, "LayerNormalization") == ops.count("LayerNormalization") >= 2
    assert _float_nodes(onnx_path, "Softmax") == ops.count("Softmax") == 1

    figures = new.vs_fp32
    assert figures["views"] == 4 * 16 and 0 <= figures["top1_agreement"] <= 1 and figures["mean_abs_dprob"] >= 0
    assert figures["meets_bar"] == (not registry.int8_gate_problems(figures))

    code, out, err = cli("models", "show", new.id)
    assert code == 0 and "INT8 scope    INT8 on Conv, MatMul, Gemm; in float: 2 attention MatMul(s)" in out
    assert "LayerNormalization" in out and "tried: minmax, dynamic, percentile" in out
    from imgai.hub.publish import render_classifier_card

    card = str(render_classifier_card(new, repo_id="someone/vit-int8"))
    assert "a graph with attention or LayerNorm: those stay float" in card and "INT8 on Conv, MatMul" in card

    code, out, err = cli("tag", folder / "chelsea.jpg", "--model", new.id, "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["tags"][0]["label"] in LABELS


def test_dynamic_int8_of_a_vit_keeps_attention_and_layernorm_float(imgai_home, tmp_path):
    """--method dynamic on a transformer graph: weights per channel, activations quantized at run
    time (MatMulInteger), the same scope; one model serves every fold."""
    from imgai.classify.quantize import QuantizeOptions, quantize

    model, folder = _converted("transformers", "vit", tmp_path)
    new = quantize(model.id, options=QuantizeOptions(method="dynamic", calibration=str(folder), force=True))
    settings = new.extra["quantization"]
    assert settings["format"] == "QOperator (dynamic)" and settings["scope"]["methods"] == ["dynamic"]
    assert settings["scope"]["op_types_to_quantize"] == ["Conv", "MatMul", "Gemm"] and new.valid
    import onnx

    ops = [n.op_type for n in onnx.load(new.onnx_path).graph.node]
    assert ops.count("MatMulInteger") >= 4 and ops.count("MatMul") == 2 and "LayerNormalization" in ops
    assert new.vs_fp32["views"] == 4 * 16 and new.vs_fp32["top1_agreement"] >= 0.9


@pytest.mark.parametrize("library,name", [("transformers", "deit"), ("transformers", "beit"), ("transformers", "swin"),
                                          ("transformers", "dinov2"), ("timm", "vit_tiny_patch16_224")])
def test_static_int8_of_each_transformer_family_keeps_its_attention_float(imgai_home, tmp_path, library, name):
    """Each transformer family the sweep offers goes through the same plan: a validated INT8 copy
    whose attention MatMuls (Swin: per window) take no quantized activation, with its figures."""
    from imgai.classify.quantize import QuantizeOptions, quantize

    model, folder = _converted(library, name, tmp_path)
    new = quantize(model.id, options=QuantizeOptions(method="minmax", calibration=str(folder), budget=0.01))
    scope = new.extra["quantization"]["scope"]
    assert new.valid and scope["family"] == "transformer" and scope["attention_matmuls_in_float"] >= 2
    assert _float_nodes(new.onnx_path, "MatMul") == scope["attention_matmuls_in_float"]
    assert new.vs_fp32["views"] == 4 * 16 and 0 <= new.vs_fp32["top1_agreement"] <= 1


def test_a_cnn_keeps_the_default_int8_plan_and_convnext_keeps_its_layernorm_float(imgai_home, tmp_path):
    """A CNN graph is not a transformer: onnxruntime's default op types, the calibration methods only.
    ConvNeXt normalises with LayerNorm: the weights-only scope, LayerNorm float, no attention."""
    from imgai.classify.convert import convert
    from imgai.classify.quantize import shape_only_nodes
    from imgai.classify.quantize_scope import quant_plan
    from imgai.sources import add_model

    model = convert(add_model(str(build("transformers", "regnet", tmp_path / "regnet")), name="regnet").id)
    plan = quant_plan(model.onnx_path, method="auto", shape_only=shape_only_nodes(model.onnx_path))
    assert (plan.scope.transformer, plan.op_types, plan.methods) == (False, None, ["minmax", "percentile"])
    assert plan.to_dict()["family"] == "cnn" and quant_plan(model.onnx_path, method="dynamic").methods == ["dynamic"]

    model = convert(add_model(str(build("transformers", "convnext", tmp_path / "convnext")), name="convnext").id)
    plan = quant_plan(model.onnx_path, method="auto")
    assert (plan.to_dict()["family"], plan.scope.attention_matmuls) == ("layernorm", 0)
    assert plan.op_types == ["Conv", "MatMul", "Gemm"] and "LayerNormalization" in plan.scope.float_ops
    assert plan.methods == ["minmax", "dynamic", "percentile"]


def test_the_sweep_records_a_pass_and_a_failure_with_its_reason(tmp_path):
    """The sweep itself, on one tiny candidate that converts and one that cannot be built here."""
    from imgai.classify.architectures import read_support_table
    from imgai.classify.sweep import run_sweep
    from imgai.classify.sweep_candidates import Candidate

    tiny = Candidate("transformers", "vit", "ViT", (), {"hidden_size": 16, "num_hidden_layers": 1, "image_size": 32,
                                                         "num_attention_heads": 2, "intermediate_size": 16,
                                                         "patch_size": 8})
    natten = Candidate("transformers", "dinat", "Dinat", (), {})       # needs the natten package
    table = tmp_path / "support_table.json"
    outcomes = run_sweep([tiny, natten], table_path=table)
    assert [o.passed for o in outcomes] == [True, False]
    assert outcomes[0].exporter == "optimum" and outcomes[0].max_abs_diff <= 1e-4 and outcomes[0].parameters
    assert outcomes[0].shrunk.startswith("hidden_size=16")
    assert outcomes[1].reason.startswith("building failed: ImportError") and "natten" in outcomes[1].reason
    rows = read_support_table(table)
    assert [(r.name, r.passed) for r in rows] == [("dinat", False), ("vit", True)]    # in candidate order
    run_sweep([natten], table_path=table)                 # a later run merges: one row per candidate
    assert [(r.name, r.passed) for r in read_support_table(table)] == [("dinat", False), ("vit", True)]
