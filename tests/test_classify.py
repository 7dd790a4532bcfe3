"""The tagging journey for every supported family: add → convert → validate → tag, via the CLI."""

import json
import shutil

import numpy as np
import pytest

from imgai import registry
from tests.factories import LABELS, TINY_MODELS, random_image


@pytest.mark.parametrize("key", sorted(TINY_MODELS))
def test_add_convert_validate_tag(key, imgai_home, tiny_model_cache, tmp_path, cli):
    folder = shutil.copytree(tiny_model_cache(key), tmp_path / key)
    code, out, err = cli("models", "add", folder, "--name", key, "--json")
    assert code == 0, err
    added = json.loads(out)
    assert list(added)[0] == "id"
    assert (added["type"], added["conversion"]) == ("PyTorch", "NotConverted")
    assert added["library"] == key.split("-")[0]

    code, out, err = cli("models", "convert", added["id"], "--wait")
    assert code == 0, err
    model = registry.get(added["id"])
    assert (model.type, model.conversion, model.error) == ("ONNX", "Converted", None)
    onnx_dir = imgai_home / "models" / model.id / "onnx"
    assert sorted(p.name for p in onnx_dir.iterdir()) == ["labels.json", "model.onnx", "preprocess.json"]
    assert json.loads((onnx_dir / "labels.json").read_text()) == {str(i): l for i, l in enumerate(LABELS)}
    assert model.validation["passed"] and model.validation["max_abs_diff"] <= 1e-4 * 10
    assert model.validation["top1_agreement"] == 1.0

    code, out, _ = cli("models", "validate", model.id, "--json")
    assert code == 0 and json.loads(out)["compared_with_pytorch"] is True

    # the first converted model becomes enabled and the default
    images = [random_image(tmp_path / f"img{i}.png", seed=i) for i in range(3)]
    code, out, err = cli("tag", *images, "--format", "json", "--top-k", "2")
    assert code == 0, err
    results = json.loads(out)
    assert [r["path"] for r in results] == [str(p) for p in images]
    for r in results:
        assert r["error"] is None and len(r["tags"]) == 2
        assert {t["label"] for t in r["tags"]} <= set(LABELS)
        assert r["tags"][0]["score"] >= r["tags"][1]["score"]


def test_tiny_models_have_meaningful_logits(tiny_model_cache):
    """Parity checks mean something only if logits are not all ~0."""
    import torch

    from imgai.classify.load import load_model

    for key in TINY_MODELS:
        loaded = load_model(tiny_model_cache(key))
        with torch.no_grad():
            logits = loaded.module(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
        assert float(logits.abs().max()) > 1e-2, key


def test_tag_probabilities_match_transformers_pipeline(imgai_home, tiny_model_cache, tmp_path, photos):
    """Our preprocessing reproduces transformers' own image processor (within 1e-3)."""
    from transformers import pipeline

    from imgai.classify.convert import convert
    from imgai.classify.tag import TagOptions, tag
    from imgai.sources import add_model

    for key in ("transformers-resnet", "transformers-efficientnet", "transformers-mobilenet_v2"):
        folder = tiny_model_cache(key)
        model = add_model(str(folder), name=key)
        convert(model.id)
        registry.set_enabled(model.id, True)
        ours = tag([photos["chelsea"]], model_id=model.id, options=TagOptions(top_k=3))[0]
        theirs = pipeline("image-classification", model=str(folder), device="cpu")(str(photos["chelsea"]), top_k=3)
        assert [t.label for t in ours.tags] == [t["label"] for t in theirs], key
        np.testing.assert_allclose([t.score for t in ours.tags], [t["score"] for t in theirs], atol=1e-3)


def test_tag_probabilities_match_timm_transforms(imgai_home, tiny_model_cache, photos):
    """…and timm's eval transforms."""
    import timm
    import torch
    from PIL import Image

    from imgai.classify.convert import convert
    from imgai.classify.load import load_model
    from imgai.classify.tag import TagOptions, tag
    from imgai.sources import add_model

    folder = tiny_model_cache("timm-efficientnet")
    model = add_model(str(folder))
    convert(model.id)
    ours = tag([photos["coffee"]], model_id=model.id, options=TagOptions(top_k=3))[0]
    loaded = load_model(folder)
    cfg = json.loads((folder / "config.json").read_text())["pretrained_cfg"]
    transform = timm.data.create_transform(input_size=tuple(cfg["input_size"]), interpolation=cfg["interpolation"],
                                           crop_pct=cfg["crop_pct"], mean=cfg["mean"], std=cfg["std"])
    with torch.no_grad():
        probs = loaded.module(transform(Image.open(photos["coffee"]).convert("RGB"))[None]).softmax(-1)[0]
    top = probs.topk(3)
    assert [t.label for t in ours.tags] == [LABELS[i] for i in top.indices]
    np.testing.assert_allclose([t.score for t in ours.tags], top.values.numpy(), atol=1e-3)


def test_timm_config_written_by_save_for_hf_loads(imgai_home, tiny_model_cache, tmp_path):
    """timm's save_for_hf repeats num_classes inside model_args; that must not break loading."""
    from imgai.classify.convert import convert
    from imgai.sources import add_model

    folder = shutil.copytree(tiny_model_cache("timm-mobilenetv3"), tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    config["model_args"] = {**config["model_args"], "num_classes": 3}
    (folder / "config.json").write_text(json.dumps(config))
    assert convert(add_model(str(folder)).id).conversion == "Converted"


def test_multi_label_timm_model_tags_with_sigmoid(imgai_home, tiny_model_cache, tmp_path):
    """A model trained with BCE (imgai's trainer writes "multi_label": true) scores labels independently."""
    from imgai.classify.convert import convert
    from imgai.classify.tag import TagOptions, tag
    from imgai.sources import add_model

    folder = shutil.copytree(tiny_model_cache("timm-mobilenetv3"), tmp_path / "ml")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "multi_label": True}))
    model = convert(add_model(str(folder)).id)
    spec = json.loads((imgai_home / "models" / model.id / "onnx" / "preprocess.json").read_text())
    assert spec["multi_label"] is True
    tags = tag([random_image(tmp_path / "x.png")], options=TagOptions(top_k=3))[0].tags
    assert abs(sum(t.score for t in tags) - 1.0) > 1e-3 and all(0 < t.score < 1 for t in tags)
