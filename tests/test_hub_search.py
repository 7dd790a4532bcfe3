"""Search and inspect against the fake Hub; login status; offline and unreachable Hub."""

from __future__ import annotations

import json
import time

import pytest

from imgai import jobs, registry
from imgai.errors import ConfigError, HubNotFoundError
from imgai.hub import add_cached, cached_models, download, hub_status, info, search, whoami
from tests.hub_fixtures import (  # noqa: F401  (fixtures are used by name)
    ALICE_TOKEN, BOB_TOKEN, fake_hub, fake_hub_server, fake_hub_template, point_hf_at)

SUPPORTED = {"acme/resnet-tiny", "acme/efficientnet-tiny", "acme/mobilenet-v2-tiny", "acme/fancy-classifier",
             "timmfolk/mobilenetv3-tiny", "timmfolk/mobilenetv3-large", "acme/gated-resnet", "acme/huge-resnet",
             "acme/ratelimited-resnet", "acme/vit-tiny", "timmfolk/vit-tiny"}
# hidden, one per reason (the category Browse counts them under)
LOOKALIKES = {"acme/resnet-text-bert": "head", "acme/resnet-custom-code": "custom_code",
              "acme/resnet-lookalike-detr": "head", "acme/resnet-failed-family": "failed",
              "acme/resnet-pickle-only": "weights", "timmfolk/resnet-like-unknown": "unsupported"}


def test_search_shows_only_supported_models_and_counts_the_hidden(fake_hub):
    result = search("", limit=50)
    assert result.online
    assert {m.repo_id for m in result.models} == SUPPORTED       # carol's private repo is not visible to alice
    assert {h["repo_id"]: h["category"] for h in result.hidden} == LOOKALIKES
    assert result.hidden_unsupported == 6 and "6 hidden as unsupported" in result.message
    assert result.hidden_by_reason == {"needs custom code": 1, "not an image-classification head": 2,
                                       "family failed the sweep": 1, "no safetensors weights": 1,
                                       "not a family the sweep tried": 1}
    assert "2 not an image-classification head" in result.message
    hidden = {h["repo_id"]: h["reason"] for h in result.hidden}
    assert "modeling_mine.MyResNet" in hidden["acme/resnet-custom-code"]
    assert "imgai takes image-classification heads" in hidden["acme/resnet-lookalike-detr"]
    assert "failed imgai's conversion sweep" in hidden["acme/resnet-failed-family"]
    by_id = {m.repo_id: m for m in result.models}
    resnet = by_id["acme/resnet-tiny"]
    assert (resnet.family, resnet.library, resnet.labels, resnet.license) == ("ResNet", "transformers", 3, "apache-2.0")
    assert resnet.size == sum(f["size"] for f in info("acme/resnet-tiny").files if f["needed"])
    assert resnet.parameters and resnet.downloads == 900 and resnet.last_modified
    assert by_id["acme/fancy-classifier"].family == "ResNet"      # support comes from config, not the name
    assert (by_id["acme/vit-tiny"].family, by_id["timmfolk/vit-tiny"].family) == ("ViT", "ViT")
    assert by_id["timmfolk/mobilenetv3-tiny"].architecture == "mobilenetv3_small_050"
    assert by_id["acme/gated-resnet"].gated == "manual"
    assert by_id["acme/huge-resnet"].size > 10**15
    assert [m.downloads for m in result.models] == sorted((m.downloads for m in result.models), reverse=True)


def test_search_filters_query_family_library_sort_and_limit(fake_hub):
    by_query = search("resnet", limit=50)
    assert {m.repo_id for m in by_query.models} == {
        "acme/resnet-tiny", "acme/gated-resnet", "acme/huge-resnet", "acme/ratelimited-resnet"}
    assert by_query.hidden_unsupported == 6          # the lookalikes match the query but are hidden
    assert {m.repo_id for m in search("", family="mobilenet", limit=50).models} == {
        "acme/mobilenet-v2-tiny", "timmfolk/mobilenetv3-tiny", "timmfolk/mobilenetv3-large"}
    timm_only = search("", library="timm", limit=50)
    assert {m.repo_id for m in timm_only.models} == {"timmfolk/mobilenetv3-tiny", "timmfolk/mobilenetv3-large",
                                                     "timmfolk/vit-tiny"}
    assert [h["repo_id"] for h in timm_only.hidden] == ["timmfolk/resnet-like-unknown"]
    assert {m.repo_id for m in search("", family="vit", limit=50).models} == {"acme/vit-tiny", "timmfolk/vit-tiny"}
    likes = search("", sort="likes", limit=3)
    assert [m.repo_id for m in likes.models] == ["timmfolk/mobilenetv3-tiny", "acme/efficientnet-tiny", "acme/resnet-tiny"]
    for bad, message in (({"family": "NoSuchNet"}, "family 'NoSuchNet'"), ({"library": "keras"}, "library 'keras'"),
                         ({"sort": "stars"}, "sort 'stars'"), ({"limit": 0}, "limit 0")):
        with pytest.raises(ConfigError, match=message):
            search("", **bad)


def test_info_details_files_and_registry_state(fake_hub):
    details = info("acme/resnet-tiny")
    assert details.supported and details.model.family == "ResNet"
    needed = {f["path"] for f in details.files if f["needed"]}
    assert needed == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}
    assert {"pytorch_model.bin", "tf_model.h5"} <= {f["path"] for f in details.files}
    assert details.download_size < details.total_size
    assert details.label_names == ["cat", "dog", "bird"]
    assert details.card_summary.startswith("A tiny ResNet built in code") and details.in_registry is None
    unsupported = info("acme/resnet-lookalike-detr")
    assert not unsupported.supported and "'DetrForObjectDetection'" in unsupported.reason
    with pytest.raises(HubNotFoundError, match="no Hub repo 'acme/nothing-here'"):
        info("acme/nothing-here")
    gated = info("acme/gated-resnet", token=BOB_TOKEN)    # bob may not read its files: metadata decides
    assert gated.supported and gated.model.gated == "manual"


def test_cli_search_and_info_json(fake_hub, capsys):
    from imgai.cli import main

    assert main(["hub", "search", "tiny", "--family", "EfficientNet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["repo_id"] for m in data["models"]] == ["acme/efficientnet-tiny"]
    assert main(["hub", "search", "resnet"]) == 0
    out = capsys.readouterr().out
    assert "6 hidden as unsupported" in out and "REPO ID" in out and "acme/resnet-tiny" in out
    assert "lookalike" not in out
    assert main(["hub", "search", "resnet", "--show-hidden"]) == 0
    out = capsys.readouterr().out
    assert "acme/resnet-lookalike-detr" in out and "imgai takes image-classification heads" in out
    assert main(["hub", "families"]) == 0
    out = capsys.readouterr().out
    assert "candidates pass" in out and "ViT" in out and "DINOv2" in out
    assert main(["hub", "info", "acme/mobilenet-v2-tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["architecture"] == "MobileNetV2ForImageClassification"
    assert main(["hub", "info", "acme/nope"]) == 1
    assert "error: no Hub repo 'acme/nope'" in capsys.readouterr().err


@pytest.mark.parametrize("token, signed_in, expected", [
    (ALICE_TOKEN, True, "signed in as alice (can push, via HF_TOKEN)"),
    (BOB_TOKEN, True, "signed in as bob (read-only token, via HF_TOKEN)"),
    ("hf_NotAValidTokenAtAll0000000000000", False, "is invalid or expired"),
    (None, False, "not signed in (set HF_TOKEN or run `huggingface-cli login`)"),
])
def test_whoami(fake_hub, monkeypatch, token, signed_in, expected):
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    else:
        monkeypatch.delenv("HF_TOKEN")
    status = whoami()
    assert status.signed_in is signed_in and expected in status.message
    assert token is None or token not in status.message


def test_offline_mode_lists_and_adds_the_supported_models_in_the_local_cache(fake_hub, monkeypatch):
    from huggingface_hub import snapshot_download

    # fill the cache the way any HF tool would (config-only copies do not count as models)
    snapshot_download("acme/mobilenet-v2-tiny")
    snapshot_download("acme/resnet-lookalike-detr")
    from huggingface_hub import hf_hub_download

    hf_hub_download("acme/efficientnet-tiny", "config.json")
    point_hf_at(monkeypatch, endpoint=None, hf_home=fake_hub.hf_home, offline=True, token=None)
    status = hub_status()
    assert not status.online and status.message.startswith("Offline: HF_HUB_OFFLINE=1 is set")
    result = search("")
    assert not result.online and result.message == status.message
    assert [(m.repo_id, m.cached, m.family) for m in result.models] == [("acme/mobilenet-v2-tiny", True, "MobileNet")]
    assert search("mobile", family="ResNet").models == []
    # "Download" while offline registers the cached copy (the job's worker is offline too)
    job = jobs.wait(download("acme/mobilenet-v2-tiny").id, timeout=120)
    assert job.state == jobs.SUCCEEDED and job.result["from_cache"] is True, job.error
    model = registry.get(job.result["model_id"])
    assert model.source == f"acme/mobilenet-v2-tiny@{result.models[0].sha}"
    assert (model.type, model.conversion) == (registry.PYTORCH, registry.NOT_CONVERTED)
    assert add_cached("acme/mobilenet-v2-tiny").id == model.id       # the same commit twice: one model
    failed = jobs.wait(download("acme/efficientnet-tiny").id, timeout=120)
    assert failed.state == jobs.FAILED
    assert failed.error.startswith("cannot download acme/efficientnet-tiny: HF_HUB_OFFLINE=1 is set, and no complete")
    details = info("acme/mobilenet-v2-tiny")
    assert details.in_registry == model.id and details.label_names == ["cat", "dog", "bird"]
    assert [m.repo_id for m in cached_models()] == ["acme/mobilenet-v2-tiny"]


def test_unreachable_hub_is_reported_in_one_line_within_seconds(imgai_home, tmp_path, monkeypatch):
    from tests.conftest import free_port

    point_hf_at(monkeypatch, endpoint=f"http://127.0.0.1:{free_port()}", hf_home=tmp_path / "hf", offline=False,
                token=None)
    import huggingface_hub.hf_api  # noqa: F401  (imported before the clock starts: the bound is on
    import requests  # noqa: F401   retries and timeouts, not on how fast a busy machine imports)
    import imgai.hub.cache  # noqa: F401

    t0 = time.monotonic()
    result = search("resnet")
    assert time.monotonic() - t0 < 5
    assert not result.online and result.models == []
    assert "is unreachable (connection refused)" in result.message and "\n" not in result.message
    assert "not checked: the Hub is unreachable" in whoami(ALICE_TOKEN).message


def test_the_fake_hub_speaks_the_real_clients_protocol(fake_hub):
    """The parts of the protocol imgai does not lean on in every test: pagination, paths-info."""
    from huggingface_hub import HfApi

    api = HfApi()
    everything = [m.id for m in api.list_models()]
    assert len(everything) == 17 and "carol/private-resnet" not in everything   # 18 repos, one private
    assert len([r for r in fake_hub.requests() if r.startswith("GET /api/models ")]) >= 3   # followed Link pages
    files = {f.path: f for f in api.get_paths_info("acme/resnet-tiny", ["config.json", "model.safetensors"])}
    assert files["model.safetensors"].lfs.size == files["model.safetensors"].size > 0
    assert files["config.json"].lfs is None and len(files["config.json"].blob_id) == 40
