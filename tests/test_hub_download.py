"""Download as a job against the fake Hub: byte progress, the HF cache, registration, duplicates,
access errors, a server killed mid-download, the disk-space check; then convert and tag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imgai import jobs, registry
from imgai.hub import download
from tests.factories import random_image
from tests.hub_fixtures import (  # noqa: F401  (fixtures are used by name)
    ALICE_TOKEN, BOB_TOKEN, fake_hub, fake_hub_server, fake_hub_template, files_containing)
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)


def run(repo: str, **kwargs) -> jobs.Job:
    job = download(repo, **kwargs)
    return jobs.wait(job.id, timeout=120)


def weights_requests(hub, name: str) -> list[str]:
    return [r for r in hub.requests() if name in r or "/_lfs/" in r]


def test_download_registers_from_the_hf_cache_then_converts_and_tags(fake_hub, tmp_path):
    seen: list[float] = []
    job = download("acme/resnet-tiny")
    assert "token" not in json.dumps(job.params)
    job = jobs.wait(job.id, timeout=120, on_progress=lambda j: seen.append(j.progress))
    assert job.state == jobs.SUCCEEDED, job.error
    model = registry.get(job.result["model_id"])
    commit = job.result["source"].split("@")[1]
    assert (model.type, model.conversion) == (registry.PYTORCH, registry.NOT_CONVERTED)
    assert model.source == f"acme/resnet-tiny@{commit}" and len(commit) == 40
    snapshot = fake_hub.hf_home / "hub" / "models--acme--resnet-tiny" / "snapshots" / commit
    assert Path(model.pytorch_path) == snapshot
    # only what the model needs: no pickle next to safetensors, no TF weights, no .gitattributes
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "preprocessor_config.json"]
    assert not [r for r in fake_hub.requests() if "pytorch_model.bin" in r or "tf_model.h5" in r]
    plan = next(e for e in jobs.events(job.id) if e["data"] and "bytes_total" in e["data"])
    assert plan["data"]["bytes_total"] == sum((snapshot / f["path"]).stat().st_size for f in plan["data"]["files"])
    assert seen[-1] == 1.0 and model.extra["hub"]["license"] == "apache-2.0"

    # the same commit again: nothing downloaded, nothing registered twice
    before = len(fake_hub.requests())
    again = run("acme/resnet-tiny")
    assert again.state == jobs.SUCCEEDED and again.result["already_registered"] is True
    assert again.result["model_id"] == model.id
    assert [m.source for m in registry.list_models()].count(model.source) == 1
    assert not [r for r in fake_hub.requests()[before:] if "/resolve/" in r]

    # the journey goes on: convert, then tag
    from imgai.classify.convert import convert
    from imgai.classify.tag import tag

    converted = convert(model.id)
    assert (converted.type, converted.conversion, converted.valid) == (registry.ONNX, registry.CONVERTED, True)
    results = tag([random_image(tmp_path / "a.png")], model_id=model.id)
    assert results[0].error is None and results[0].tags[0].label in {"cat", "dog", "bird"}


def test_byte_progress_and_resume_after_the_server_died(fake_hub):
    # the client writes in 10 MiB chunks: the server dies after 15 MB of 22 MB, so 10 MiB are kept
    name = "timmfolk/mobilenetv3-large/model.safetensors"
    fake_hub.store.set_faults(die_after={name: 15_000_000}, slow={name: 10_000_000})
    seen: list[float] = []
    job = download("timmfolk/mobilenetv3-large")
    job = jobs.wait(job.id, timeout=120, on_progress=lambda j: seen.append(j.progress))
    assert job.state == jobs.FAILED
    assert "connection to the Hub was lost while downloading model.safetensors" in job.error
    assert "resumes where it stopped" in job.error
    assert fake_hub.wait_dead(), "the fault should have killed the server"
    assert any(0.4 < p < 0.6 for p in seen), f"no byte progress seen: {seen}"
    assert registry.list_models() == []          # nothing half-registered
    partial = list((fake_hub.hf_home / "hub" / "models--timmfolk--mobilenetv3-large" / "blobs").glob("*.incomplete"))
    assert len(partial) == 1
    kept = partial[0].stat().st_size
    assert kept == 10 * 1024 * 1024

    fake_hub.start()
    retry = run("timmfolk/mobilenetv3-large")
    assert retry.state == jobs.SUCCEEDED, retry.error
    resumed = [r for r in fake_hub.requests() if r.startswith("GET /_lfs/") and "range=bytes=" in r]
    assert resumed and resumed[-1].split("range=bytes=")[1].startswith(f"{kept}-"), resumed
    model = registry.get(retry.result["model_id"])
    assert (model.library, model.architecture) == ("timm", "mobilenetv3_large_100")


@pytest.mark.parametrize("repo, token, expected", [
    ("acme/gated-resnet", None, "is gated: sign in"),
    ("acme/gated-resnet", BOB_TOKEN, "has not been granted access"),
    ("acme/no-such-model", ALICE_TOKEN, "no Hub repo 'acme/no-such-model'"),
    ("carol/private-resnet", None, "no Hub repo 'carol/private-resnet' is visible without signing in"),
    ("acme/resnet-tiny@no-such-branch", ALICE_TOKEN, "has no revision 'no-such-branch'"),
    ("acme/ratelimited-resnet", ALICE_TOKEN, "rate-limiting requests (HTTP 429)"),
    ("acme/resnet-lookalike-detr", ALICE_TOKEN, "imgai takes image-classification heads"),
    ("acme/resnet-custom-code", ALICE_TOKEN, "auto_map"),
])
def test_download_errors_are_clear_and_register_nothing(fake_hub, monkeypatch, repo, token, expected):
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    else:
        monkeypatch.delenv("HF_TOKEN")
    if "ratelimited" in repo:
        fake_hub.store.set_faults(rate_limit=["acme/ratelimited-resnet"])
    job = run(repo)
    assert job.state == jobs.FAILED and expected in job.error, job.error
    assert registry.list_models() == []
    assert not [r for r in fake_hub.requests() if "model.safetensors" in r and r.startswith("GET")]


def test_gated_repo_downloads_with_an_approved_visitor_token_handed_over_in_a_file(fake_hub, monkeypatch,
                                                                                     imgai_home):
    monkeypatch.delenv("HF_TOKEN")               # the worker inherits no token: only the handed-over one
    job = download("acme/gated-resnet", token=ALICE_TOKEN)
    assert ALICE_TOKEN not in json.dumps(job.to_dict())
    token_file = Path(job.params["token_file"])
    assert token_file.parent.name == "secrets"
    job = jobs.wait(job.id, timeout=120)
    assert job.state == jobs.SUCCEEDED, job.error
    assert not token_file.exists()
    assert files_containing(imgai_home, ALICE_TOKEN) == [] and files_containing(fake_hub.hf_home, ALICE_TOKEN) == []


def test_disk_space_is_checked_before_downloading(fake_hub):
    job = run("acme/huge-resnet")
    assert job.state == jobs.FAILED
    assert "not enough disk space to download acme/huge-resnet" in job.error
    assert "1.0 PB" in job.error and "is free" in job.error
    assert not [r for r in fake_hub.requests() if "/_lfs/" in r or "model.safetensors" in r and "GET" in r]
    assert registry.list_models() == []


def test_cli_download_wait_prints_the_registered_model(fake_hub, capsys):
    from imgai.cli import main

    assert main(["hub", "download", "acme/efficientnet-tiny", "--wait"]) == 0
    out = capsys.readouterr().out
    model = registry.list_models()[0]
    assert f"registered as {model.id} from acme/efficientnet-tiny@" in out
    assert model.architecture == "EfficientNetForImageClassification"
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_cancelling_a_download_keeps_the_partial_blob_and_registers_nothing(fake_hub):
    name = "timmfolk/mobilenetv3-large/model.safetensors"
    fake_hub.store.set_faults(slow={name: 5_000_000})
    job = download("timmfolk/mobilenetv3-large", token=ALICE_TOKEN)
    token_file = Path(job.params["token_file"])
    wait_until(lambda: jobs.get(job.id).progress >= 0.4, what="the download to pass 40%")
    cancelled = jobs.cancel(job.id)
    assert cancelled.state == jobs.CANCELLED
    assert registry.list_models() == [] and not token_file.exists()
    blobs = fake_hub.hf_home / "hub" / "models--timmfolk--mobilenetv3-large" / "blobs"
    assert [p.stat().st_size for p in blobs.glob("*.incomplete")] == [10 * 1024 * 1024]


def test_every_hub_failure_is_the_same_typed_error_whichever_path_meets_it(fake_hub, monkeypatch):
    """`models add org/name` and a diffusion source go through hub.client.translate like the download
    job: a missing repo is HubNotFoundError (not "unknown model"), a gated one HubAccessError."""
    from imgai.diffusion.source import download_pipeline
    from imgai.errors import HubAccessError, HubNotFoundError
    from imgai.sources import add_model

    for fetch in (add_model, download_pipeline):
        with pytest.raises(HubNotFoundError, match="no Hub repo 'acme/no-such-model'"):
            fetch("acme/no-such-model")
    monkeypatch.delenv("HF_TOKEN")
    for fetch in (add_model, download_pipeline):
        with pytest.raises(HubAccessError, match="acme/gated-resnet is gated: sign in"):
            fetch("acme/gated-resnet")
    assert registry.list_models() == []
