"""INT8 classifiers: onnxruntime quantization as a job, measured against FP32 before they may tag."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from imgai import jobs, registry
from imgai.classify.quantize import QuantizeOptions, int8_id, quantize, submit_quantization
from imgai.errors import ConfigError, StateError
from tests.factories import photo, random_image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry")


@pytest.fixture
def fp32_model(imgai_home, tiny_model_cache, tmp_path):
    """A converted, validated, enabled (default) tiny ResNet built in code."""
    from imgai.classify.convert import convert
    from imgai.sources import add_model

    folder = shutil.copytree(tiny_model_cache("timm-resnet"), tmp_path / "model")
    return convert(add_model(str(folder)).id)


@pytest.fixture
def calibration_folder(tmp_path):
    """Real photos, plus a file that is not an image and a truncated JPEG."""
    folder = tmp_path / "calibration"
    (folder / "more").mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        photo(name, folder if i % 2 else folder / "more")
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    whole = (folder / "chelsea.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(whole[:len(whole) // 3])
    return folder


def _events(job_id):
    return [e["message"] for e in jobs.events(job_id)]


def test_quantize_tiny_model_as_a_job_skipping_bad_files(fp32_model, calibration_folder, cli):
    code, out, err = cli("models", "quantize", fp32_model.id, "--calibration", calibration_folder, "--method", "minmax",
                         "--budget", "0.01", "--wait", "--json")
    job = json.loads(out)
    assert code == 0 and job["state"] == "succeeded", job["error"]
    new = registry.get(int8_id(fp32_model.id))
    assert (new.type, new.precision, new.valid, new.extra["quantized_from"]) == ("ONNX", "int8", True, fp32_model.id)
    settings = new.extra["quantization"]
    assert (settings["format"], settings["per_channel"], settings["calibrate_method"]) == ("QDQ", True, "MinMax")
    assert settings["calibration"] == f"folder {calibration_folder}"

    # the same labels and preprocessing; an onnxruntime-quantized graph
    src, dst = Path(fp32_model.onnx_path).parent, Path(new.onnx_path).parent
    for name in ("labels.json", "preprocess.json"):
        assert (src / name).read_bytes() == (dst / name).read_bytes()
    import onnx

    nodes = onnx.load(str(dst / "model.onnx")).graph.node
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in nodes}
    # the logits come from the Gemm itself, not rounded to 8 bits after it
    graph = onnx.load(str(dst / "model.onnx")).graph
    assert [n.op_type for n in graph.node if set(n.output) & {o.name for o in graph.output}] == ["Gemm"]
    assert settings["float_output_ops"] == ["Gemm"]
    # every convolution (none kept in FP32 here) took its weights' mean shift off its bias
    assert settings["bias_corrected"] == sum(n.op_type == "Conv" for n in nodes) > 0

    # bad files are skipped with a note; every photo was held back once (k-fold) for the comparison
    messages = _events(job["id"])
    assert any("skipped broken.jpg: not an image" in m for m in messages)
    assert any(m.startswith("skipped cut.jpg: damaged or truncated") for m in messages)
    assert {s.split(":")[0] for s in settings["skipped"]} == {"broken.jpg", "cut.jpg"}
    assert settings["photos"] == 8 and settings["views_per_photo"] == 16
    figures = new.vs_fp32
    assert figures["views"] == 8 * 16 and figures["folds"] == 4 and 0 <= figures["top1_agreement"] <= 1
    assert figures["mean_abs_dprob"] <= figures["max_abs_dprob"] and figures["int8_ms_per_image"] > 0
    assert any(m.startswith("attempt 1: MinMax, 0 node(s) FP32 → agreement") for m in messages)

    code, out, _ = cli("models", "show", new.id)
    assert "precision     INT8" in out and "vs FP32       top-1 agreement" in out and "mean |Δprob|" in out
    assert f"bias-corrected on {settings['bias_corrected']} convolutions" in out and "float logits (Gemm output)" in out
    code, out, _ = cli("models", "list")
    assert "INT8" in out and "FP32" in out


def test_below_the_bar_stays_disabled_and_enabling_is_refused_unless_forced(fp32_model, tmp_path, cli):
    """A random tiny model has near-ties that INT8 rounding flips: below 99 % agreement."""
    new = quantize(fp32_model.id, options=QuantizeOptions(method="dynamic"))
    figures = new.vs_fp32
    assert figures["top1_agreement"] < registry.MIN_INT8_AGREEMENT and not figures["meets_bar"]
    assert not new.enabled and new.extra["quantization"]["format"] == "QOperator (dynamic)"

    code, _, err = cli("models", "enable", new.id)
    assert code == 1 and f"{figures['top1_agreement']:.1%}" in err and "below the 99% bar" in err
    assert "--force" in err and not registry.get(new.id).enabled
    assert cli("models", "enable", new.id, "--force")[0] == 0
    code, out, _ = cli("tag", random_image(tmp_path / "x.png"), "--model", new.id, "--format", "json")
    assert code == 0 and len(json.loads(out)[0]["tags"]) == 3


def test_refused_before_the_job(fp32_model, tmp_path, imgai_home):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="holds no images"):
        submit_quantization(fp32_model.id, options=QuantizeOptions(calibration=str(empty)))
    with pytest.raises(ConfigError, match="does not exist"):
        submit_quantization(fp32_model.id, options=QuantizeOptions(calibration=str(tmp_path / "nowhere")))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"x")
    random_image(bad / "b.png")
    with pytest.raises(ConfigError, match=r"1 usable photo\(s\) of 2 .*a.jpg: not an image"):
        submit_quantization(fp32_model.id, options=QuantizeOptions(calibration=str(bad)))
    with pytest.raises(ConfigError, match="method 'fast' is not one of auto, minmax, percentile, entropy, dynamic"):
        QuantizeOptions(method="fast")

    registry.set_enabled(fp32_model.id, False)
    with pytest.raises(StateError, match="it is ONNX / Converted, disabled, validation passed, precision FP32"):
        submit_quantization(fp32_model.id)
    pytorch = registry.create(name="raw", source="local:raw", architecture="resnet18", library="timm")
    with pytest.raises(StateError, match="it is PyTorch / NotConverted, disabled, validation not passed"):
        submit_quantization(pytorch.id)
    assert jobs.list_jobs(kind="int8") == []


def test_an_int8_model_is_not_quantized_again(fp32_model):
    new = quantize(fp32_model.id, options=QuantizeOptions(method="dynamic"))
    registry.set_enabled(new.id, True, force=True)
    with pytest.raises(StateError, match="precision INT8"):
        submit_quantization(new.id)
    with pytest.raises(StateError, match="already exists; remove it first"):
        submit_quantization(fp32_model.id)


def _onnx_for_16px(path: Path) -> None:
    """A valid 3-label classifier that takes 16x16 images (built with onnx.helper)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["pixel_values", "w"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                                                            ["batch", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def test_onnxruntime_failure_fails_the_job_and_leaves_no_model(fp32_model, imgai_home, cli):
    """The model file was replaced after validation by one for 16x16 images: onnxruntime's calibration
    refuses the 64x64 images its preprocessing makes."""
    _onnx_for_16px(Path(fp32_model.onnx_path))
    code, out, _ = cli("models", "quantize", fp32_model.id, "--wait", "--json")
    job = json.loads(out)
    assert code == 1 and job["state"] == "failed"
    assert job["error"].startswith(f"onnxruntime could not quantize {fp32_model.id!r}: ")
    assert "Got invalid dimensions for input: pixel_values" in job["error"]
    assert int8_id(fp32_model.id) not in [m.id for m in registry.list_models()]
    assert not (imgai_home / "models" / int8_id(fp32_model.id)).exists()
    assert not any((imgai_home / "tmp").iterdir())


def test_card_carries_the_int8_figures(fp32_model, calibration_folder):
    from imgai.hub.publish import render_classifier_card

    new = quantize(fp32_model.id, options=QuantizeOptions(method="minmax", calibration=str(calibration_folder), budget=0.01))
    card = str(render_classifier_card(new, repo_id="someone/tiny-int8"))
    agreement = registry.agreement_percent(new.vs_fp32['top1_agreement'])
    assert "(ONNX INT8)" in card and "## INT8 against FP32" in card and agreement in card
    assert "per-channel int8 weights" in card and "MinMax" in card and "- int8" in card
    convs = new.extra["quantization"]["bias_corrected"]
    assert convs and f"bias correction on {convs} convolutions" in card
    assert "95% lower bound" in card and "### How it was chosen" in card and "| 1 | minmax | 0 |" in card
    # the flips on views FP32 itself nearly ties, and the agreement on the others
    figures = {**new.vs_fp32, "views": 96, "disagreements": 5, "near_ties": 10, "near_tie_flips": 3,
               "decisive_agreement": 1 - 2 / 86}
    card = str(render_classifier_card(dataclasses.replace(new, extra={**new.extra, "vs_fp32": figures}),
                                      repo_id="someone/tiny-int8"))
    assert ("| flips on views FP32 nearly ties (its two best labels within 0.02) | 3 of the 5 (10 such views); "
            "agreement on the other 86 views 97.7% |") in card
    card = str(render_classifier_card(dataclasses.replace(new, extra={**new.extra, "vs_fp32": {
        **figures, "near_tie_flips": 0}}), repo_id="someone/tiny-int8"))
    assert "nearly ties" not in card
    # 190 of 192 views is below a 99 % bar, and the card does not round it up to 99.0 %
    card = str(render_classifier_card(dataclasses.replace(new, extra={**new.extra, "vs_fp32": {
        **figures, "top1_agreement": 190 / 192}}), repo_id="someone/tiny-int8"))
    assert "| top-1 agreement with the FP32 model | 98.95% (95% lower bound" in card


def test_demo_model_int8_tags_real_photos_with_the_same_top1(tmp_path, monkeypatch, photos, cli):
    """EfficientNet-Lite0 with real ImageNet weights, calibrated on the built-in photos. One method
    and a small budget keep it short: one attempt (k-fold), no node search. Static MinMax INT8 of
    this model agrees with FP32 on only ~75 % of the photos' views on an x86 CPU without VNNI (7-bit
    matrix-product weights against onnxruntime's saturating U8S8 kernels; 8-bit ones gave ~67 %; the
    uint8 weights that reach ~90 % are the search's second attempt, which this budget leaves out), so
    the copy is made and validated but is not enabled, and the CLI says why with its figures."""
    from imgai import startup
    from imgai.demo import MODEL_ID, preparing

    monkeypatch.setenv("IMGAI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IMGAI_NO_DEMO", raising=False)
    startup.prepare()                       # the demo is converted, validated and enabled by a job
    job = preparing()
    assert job is not None and jobs.wait(job.id, timeout=900).state == "succeeded", jobs.get(job.id).error
    code, out, err = cli("models", "quantize", MODEL_ID, "--method", "minmax", "--budget", "1", "--wait")
    assert code == 0, err
    new = registry.get(int8_id(MODEL_ID))
    assert (new.type, new.precision, new.valid, new.extra["quantized_from"]) == ("ONNX", "int8", True, MODEL_ID)
    settings = new.extra["quantization"]
    assert settings["calibration"] == "built-in photos (scikit-image)" and settings["calibrate_method"] == "MinMax"
    assert len(settings["search"]["attempts"]) == 1 and settings["search"]["budget_exhausted"]

    figures = new.vs_fp32
    gate_met = not registry.int8_gate_problems(figures)
    assert new.enabled == figures["enabled_by_search"] == (gate_met and figures["speedup"] >= figures["min_speedup"])
    agreement = f"{figures['top1_agreement']:.1%}"
    if gate_met:
        assert f"{new.id}: enabled — top-1 agreement {agreement}" in out
    else:                                   # today's case: kept, not enabled, and the reason in figures
        assert not new.enabled and "not enabled" in figures["why"]
        assert f"chosen: #1 — {figures['why']}" in out and agreement in figures["why"]
        assert f"{new.id}: disabled (--force to enable) — top-1 agreement {agreement}" in out
        code, _, err = cli("models", "enable", new.id)
        assert code == 1 and f"agreement {agreement}" in err and "below the 99% bar" in err
        assert not registry.get(new.id).enabled
        code, _, err = cli("models", "enable", new.id, "--force")
        assert code == 0, err

    tops = {}
    for model_id in (MODEL_ID, new.id):
        code, out, err = cli("tag", photos["chelsea"], photos["coffee"], "--model", model_id, "--format", "json")
        assert code == 0, err
        tops[model_id] = [[t["label"] for t in r["tags"]] for r in json.loads(out)]
    (cat32, coffee32), (cat8, coffee8) = tops[MODEL_ID], tops[new.id]
    assert coffee8[0] == coffee32[0] == "espresso"          # the same top-1 where INT8 holds it
    # chelsea: FP32 says tiger cat, INT8 may say Egyptian cat (the ~75 % agreement shows here); still a cat of FP32's top 3
    assert cat8[0] in cat32[:3] and {"tiger cat", "Egyptian cat", "tabby"} <= set(cat8[:3]) == set(cat32[:3])


def test_the_convert_tab_int8_action_goes_through_the_same_checks(tmp_path, monkeypatch):
    from gradio_client.exceptions import AppError

    from tests.conftest import AppServer

    home = tmp_path / "app_home"
    monkeypatch.setenv("IMGAI_HOME", str(home))
    registry.create(name="raw", source="local:raw", architecture="resnet18", library="timm")
    server = AppServer(home, env={"IMGAI_NO_DEMO": "1"})
    try:
        with pytest.raises(AppError, match="cannot quantize 'raw': it is PyTorch / NotConverted"):
            server.client().predict("raw", "auto", 5, 1.1, False, None, api_name="/int8")
    finally:
        server.stop()
