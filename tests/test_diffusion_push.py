"""`imgai quantize --push ORG` against the fake Hub (tests/fakehub.py): each finished target goes up
in one commit with its card, through imgai.hub.push_folder and its verification, and the card's
usage snippet loads the pushed repo from the Hub."""

from __future__ import annotations

import json
import os
import re

from imgai.cli import main
from tests.diffusion_fixtures import CHECK, tiny_sources  # noqa: F401 (fixture)
from tests.hub_fixtures import (ALICE_TOKEN, fake_hub, fake_hub_server, fake_hub_template,  # noqa: F401
                                files_containing)


def test_push_uploads_the_target_with_its_card_and_the_snippet_loads_it(fake_hub, tiny_sources, imgai_home,
                                                                          capsys, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, ModelCard, hf_hub_download

    code = main(["quantize", "--model", "flux1", "--backend", "pytorch", "--quantization", "INT8",
                 "--source", os.fspath(tiny_sources["flux1"]), *CHECK, "--check-prompt", "a photo of the cat",
                 "--push", "acme", "--private", "--wait", "--json"])
    (target,) = json.loads(capsys.readouterr().out)["targets"]
    assert code == 0 and target["status"] == "done", target["reason"]
    repo_id = "acme/flux1-torch-int8"
    assert target["pushed_to"].endswith(repo_id)

    local = imgai_home / "converted_models" / "flux1-torch-int8"
    sent = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    api = HfApi()
    remote = {f.path for f in api.list_repo_tree(repo_id, recursive=True) if not f.path.endswith("/")
              and "." in f.path.rsplit("/", 1)[-1]}
    assert sent <= remote and {"transformer/diffusion_pytorch_model.safetensors", "quantization_info.json",
                               "README.md", "check/converted_0.png"} <= sent
    assert api.model_info(repo_id).private
    commits = [r for r in fake_hub.requests() if r.startswith(f"POST /api/models/{repo_id}/commit/")]
    assert len(commits) == 1, "everything in one commit"

    card_path = hf_hub_download(repo_id, "README.md")
    card = ModelCard.load(card_path)
    assert card.data.base_model == "black-forest-labs/FLUX.1-schnell" and card.data.base_model_relation == "quantized"
    assert open(card_path).read() == (local / "README.md").read_text()
    assert not files_containing(imgai_home, ALICE_TOKEN), "the token must never be written anywhere"

    # the card's snippet, exactly as published, loads the repo from the (fake) Hub
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    assert f'from_pretrained("{repo_id}"' in snippet
    import huggingface_hub.hf_api

    # huggingface_hub's module-level client (what diffusers calls) fixed its endpoint at import time
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", fake_hub.url)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "card-snippet", "exec"), {})
    assert (tmp_path / "flux1-torch-int8.png").is_file()
