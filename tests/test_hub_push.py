"""Push to the fake Hub: one commit, verification (and its failure), the generated card with its
metadata and a usage snippet that runs, branches, refusals, and no token anywhere imgai writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imgai import jobs, registry
from imgai.errors import HubAccessError, PushVerificationError, StateError
from imgai.hub import download, push_folder, push_model
from tests.factories import random_image
from tests.hub_fixtures import (  # noqa: F401  (fixtures are used by name)
    ALICE_TOKEN, BOB_TOKEN, fake_hub, fake_hub_server, fake_hub_template, files_containing)

pytestmark = pytest.mark.timeout(300)


def downloaded(repo: str) -> registry.Model:
    job = jobs.wait(download(repo).id, timeout=120)
    assert job.state == jobs.SUCCEEDED, job.error
    return registry.get(job.result["model_id"])


def snippet_of(card: str) -> str:
    usage = card.split("## How to use", 1)[1]
    return re.search(r"```python\n(.*?)```", usage, re.S).group(1)


def test_push_converted_model_with_card_verified_and_a_snippet_that_runs(fake_hub, tmp_path, imgai_home, output_dir):
    from huggingface_hub import HfApi, ModelCard, hf_hub_download

    from imgai.classify.convert import convert
    from imgai.classify.tag import TagOptions, tag

    model = downloaded("acme/resnet-tiny")
    with pytest.raises(StateError, match="convert it to ONNX first"):
        push_model(model.id, "alice/resnet-tiny-onnx")
    model = convert(model.id)

    result = push_model(model.id, "alice/resnet-tiny-onnx")
    assert result.verified and result.revision == "main" and len(result.commit_oid) == 40
    assert sorted(f.path for f in result.files) == ["README.md", "labels.json", "model.onnx", "preprocess.json"]
    remote = {f.path: f for f in HfApi().list_repo_tree("alice/resnet-tiny-onnx", recursive=True)}
    assert set(remote) == {".gitattributes", "README.md", "labels.json", "model.onnx", "preprocess.json"}
    assert remote["model.onnx"].lfs is not None and remote["labels.json"].lfs is None
    commits = [r for r in fake_hub.requests() if r.startswith("POST /api/models/alice/resnet-tiny-onnx/commit/")]
    assert len(commits) == 1                                     # everything in one commit

    # the card: written next to the local model first, the same text on the Hub
    local_card = Path(model.onnx_path).parent / "README.md"
    remote_card = Path(hf_hub_download("alice/resnet-tiny-onnx", "README.md"))
    assert local_card.read_text() == remote_card.read_text()
    card = ModelCard.load(local_card)
    (output_dir / "README.md").write_text(local_card.read_text())     # kept for a human to read
    assert card.data.base_model == "acme/resnet-tiny"
    assert (card.data.library_name, card.data.pipeline_tag, card.data.license) == (
        "onnx", "image-classification", "apache-2.0")
    assert {"onnx", "image-classification", "resnet", "imgai"} <= set(card.data.tags)
    text = card.text
    for section in ("## Labels", "## Preprocessing", "## Validation", "## Speed", "## How to use", "## Limitations"):
        assert section in text
    assert "max abs logit difference" in text and "top-1 agreement" in text and "images / s" in text
    assert "`cat`, `dog`, `bird`" in text

    # the usage snippet runs as written, against the Hub, and agrees with imgai
    work = tmp_path / "snippet"
    work.mkdir()
    random_image(work / "image.jpg", size=(96, 72), seed=3)
    (work / "snippet.py").write_text(snippet_of(card.content))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=fake_hub.url, HF_HOME=str(tmp_path / "snippet-hf"), HF_HUB_DISABLE_TELEMETRY="1")
    out = subprocess.run([sys.executable, "snippet.py"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    printed = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert len(printed) == 3 and {label for label, _ in printed} == {"cat", "dog", "bird"}
    ours = tag([work / "image.jpg"], model_id=model.id, options=TagOptions(top_k=3))[0].tags
    assert [t.label for t in ours] == [label for label, _ in printed]
    assert all(abs(t.score - float(score)) < 1e-4 for t, (_, score) in zip(ours, printed))

    # what was pushed comes back as a ready-made ONNX model, with the same answers
    back = registry.get(jobs.wait(download("alice/resnet-tiny-onnx").id, timeout=120).result["model_id"])
    assert (back.type, back.conversion, back.valid) == (registry.ONNX, registry.NOT_APPLICABLE, True)
    registry.set_enabled(back.id, True)
    again = tag([work / "image.jpg"], model_id=back.id, options=TagOptions(top_k=3))[0].tags
    assert [(t.label, round(t.score, 5)) for t in again] == [(t.label, round(t.score, 5)) for t in ours]

    # a second push to a branch, from the CLI; main is left alone
    from imgai.cli import main

    assert main(["push", model.id, "--repo", "alice/resnet-tiny-onnx", "--revision", "dev", "--private"]) == 0
    branch_card = Path(hf_hub_download("alice/resnet-tiny-onnx", "README.md", revision="dev"))
    assert 'revision="dev"' in branch_card.read_text() and 'revision="dev"' not in remote_card.read_text()
    assert [p["revision"] for p in registry.get(model.id).extra["pushes"]] == ["main", "dev"]

    # the token went nowhere imgai writes
    for root in (imgai_home, fake_hub.hf_home, tmp_path):
        assert files_containing(root, ALICE_TOKEN) == []


def test_push_folder_fails_when_the_hub_holds_something_else(fake_hub, tmp_path):
    folder = tmp_path / "out"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "weights.safetensors").write_bytes(os.urandom(20_000))
    (folder / "quantization_info.json").write_text('{"backend": "torchao"}')
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# test\n")
    ok = push_folder(folder, "acme/diffusion-test", commit_message="first")
    assert ok.verified and {f.path for f in ok.files} == {"unet/weights.safetensors", "quantization_info.json",
                                                          "README.md"}
    fake_hub.store.set_faults(corrupt_commit={"acme/diffusion-test": "unet/weights.safetensors"})
    (folder / "unet" / "weights.safetensors").write_bytes(os.urandom(20_000))
    with pytest.raises(PushVerificationError) as err:
        push_folder(folder, "acme/diffusion-test")
    message = str(err.value)
    assert "unet/weights.safetensors has 20007 bytes on the Hub, 20000 were sent" in message
    assert "LFS sha256" in message and "README.md" not in message


def test_push_refusals(fake_hub, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    monkeypatch.setenv("HF_TOKEN", BOB_TOKEN)
    with pytest.raises(HubAccessError, match=r"HTTP 403") as err:
        push_folder(folder, "acme/not-bobs")
    assert BOB_TOKEN not in str(err.value)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubAccessError, match="not signed in to the Hugging Face Hub; set HF_TOKEN"):
        push_folder(folder, "alice/anything")
    monkeypatch.setenv("SYSTEM", "spaces")                 # on a Space, no visitor token means no push
    monkeypatch.setenv("SPACE_ID", "alice/imgai")
    monkeypatch.setenv("HF_TOKEN", ALICE_TOKEN)            # … even though the Space has its own token
    from imgai.hub import visitor_token

    with pytest.raises(HubAccessError, match="sign in with the Hugging Face button"):
        push_folder(folder, "alice/anything", token=visitor_token(None))


def test_an_edited_template_changes_the_card_written_and_pushed(fake_hub, tmp_path, monkeypatch):
    """A Space's owner edits templates/classifier.md.j2 (here a copy, named by IMGAI_TEMPLATES): the
    card written next to the model and the one on the Hub are the edited one."""
    import shutil

    from huggingface_hub import hf_hub_download

    from imgai.sources import add_model
    from tests.onnx_factories import make_bare_onnx

    templates = shutil.copytree(Path(__file__).resolve().parent.parent / "templates", tmp_path / "templates")
    template = templates / "classifier.md.j2"
    template.write_text(template.read_text().replace("## Labels", "## Labels (from our own card template)"))
    monkeypatch.setenv("IMGAI_TEMPLATES", str(templates))
    model = add_model(str(make_bare_onnx(tmp_path / "bare", ["apple", "pear", "plum"], size=24)))

    push_model(model.id, "alice/edited-card")
    local = (Path(model.onnx_path).parent / "README.md").read_text()
    remote = Path(hf_hub_download("alice/edited-card", "README.md")).read_text()
    assert "## Labels (from our own card template)" in local and local == remote
    assert "`apple`, `pear`, `plum`" in remote
