"""`imgai models add org/name[@rev]`: the real snapshot_download code, fed by a pre-filled HF cache
with HF_HUB_OFFLINE=1 (these machines have no Hub)."""

import shutil

import pytest

from imgai import registry
from imgai.errors import HubUnavailableError
from imgai.sources import add_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    return cache


def prefill(cache, repo_id: str, folder, commit: str = COMMIT):
    """Lay a model folder out as huggingface_hub's cache does: refs/main → snapshots/<commit>/."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo


def test_add_from_hub_id_uses_the_cache(imgai_home, hf_cache, tiny_model_cache, cli):
    prefill(hf_cache, "tiny-org/tiny-mobilenet", tiny_model_cache("transformers-mobilenet_v2"))
    code, out, err = cli("models", "add", "tiny-org/tiny-mobilenet")
    assert code == 0, err
    model = registry.list_models()[0]
    assert model.source == f"tiny-org/tiny-mobilenet@{COMMIT}"
    assert (model.type, model.conversion) == ("PyTorch", "NotConverted")
    assert model.pytorch_path.endswith(f"snapshots/{COMMIT}")          # the shared HF cache, not a copy
    assert cli("models", "add", f"tiny-org/tiny-mobilenet@{COMMIT}")[0] == 0
    assert len(registry.list_models()) == 1                            # the same commit twice: one row
    assert cli("models", "convert", model.id, "--wait")[0] == 0
    assert registry.get(model.id).conversion == "Converted"
    registry.remove(model.id)
    assert (hf_cache / "models--tiny-org--tiny-mobilenet" / "snapshots" / COMMIT).is_dir()   # cache kept


def test_hub_id_not_in_cache_offline_says_so(imgai_home, hf_cache):
    with pytest.raises(HubUnavailableError, match="cannot download nobody/nothing: .* not in the local cache"):
        add_model("nobody/nothing")
