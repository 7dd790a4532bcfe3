"""Fine-tuning from the Hub's ImageNet weights: the fake Hub serves a `timm/<arch>.<tag>` repo
built in code; a new model downloads it as a job (byte progress, safetensors only, into the HF
cache) and training starts from it (the job and the card say so); offline, training starts from
scratch; a repo whose tensors do not fit fails the download job naming the first one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hub_fixtures import FakeHub, point_hf_at
from tests.train_fixtures import make_shapes, one_thread, run_here  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
REPO, MISFIT = "timm/resnet18.a1_in1k", "timm/resnet34.a1_in1k"


def _timm_repo(folder: Path, architecture: str, seed: int) -> Path:
    """A timm weights repo as the Hub holds it: config.json + model.safetensors (1000 classes)."""
    import timm
    import torch
    from timm.models._hub import save_for_hf

    torch.manual_seed(seed)
    save_for_hf(timm.create_model(architecture).eval(), folder, safe_serialization=True)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: timm\n---\n# weights\n")
    return folder


@pytest.fixture(scope="module")
def weights_hub(tmp_path_factory):
    from tests.fakehub_store import Store

    work, root = tmp_path_factory.mktemp("weights"), tmp_path_factory.mktemp("weights-hub")
    resnet18 = _timm_repo(work / "resnet18", "resnet18", seed=11)
    store = Store(root)
    meta = {"library_name": "timm", "pipeline_tag": "image-classification", "tags": ["timm", "safetensors"]}
    store.publish_folder(REPO, resnet18, meta=meta)
    store.publish_folder(MISFIT, resnet18, meta=meta)      # resnet18's tensors under resnet34's name
    hub = FakeHub(root)
    hub.weights = resnet18 / "model.safetensors"
    yield hub
    hub.stop()


@pytest.fixture
def online(weights_hub, imgai_home, tmp_path, monkeypatch):
    point_hf_at(monkeypatch, endpoint=weights_hub.url, hf_home=tmp_path / "hf", offline=False, token=None)
    return weights_hub


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_shapes(tmp_path / "shapes", per_class=12, size=32)


def _wait(job_id):
    from imgai import jobs

    return jobs.wait(job_id, timeout=300)


def test_a_new_model_starts_from_the_hubs_imagenet_weights(online, shapes, cli, tmp_path):
    import torch
    from safetensors.torch import load_file

    from imgai import jobs, registry

    code, out, err = cli("train", "create", "--architecture", "resnet18", "--name", "pets")
    assert code == 0, err
    assert f"downloading the ImageNet weights {REPO}" in out
    plan = registry.get("pets").extra["weights"]
    assert plan["state"] == "downloading" and plan["repo_id"] == REPO
    download = _wait(plan["job_id"])
    assert download.state == jobs.SUCCEEDED, download.error
    fractions = [e["message"] for e in jobs.events(download.id)]
    assert any("downloading model.safetensors" in m for m in fractions), fractions
    snapshot = Path(download.result["path"]).parent
    assert snapshot.is_relative_to(tmp_path / "hf" / "hub") and sorted(p.name for p in snapshot.iterdir()) == \
        ["config.json", "model.safetensors"]                        # safetensors only, in the HF cache
    assert download.result["bytes"] > 40_000_000

    # the fine-tune defaults: AdamW 3e-4, flip + random resized crop for < 1,000 images
    code, out, err = cli("train", "start", "pets", "--data", shapes, "--epochs", "2", "--image-size", "32",
                         "--batch-size", "12", "--json")
    assert code == 0, err
    job = json.loads(out)
    params = jobs.get(job["job_id"]).params["config"]
    assert (params["optimizer"], params["lr"], params["flip"], params["crop"]) == ("adamw", 3e-4, True, True)
    done = run_here(job["job_id"]) if jobs.get(job["job_id"]).state == jobs.QUEUED else _wait(job["job_id"])
    assert done.state == jobs.SUCCEEDED, done.error
    source = f"{REPO}@{download.result['commit']}"
    assert done.result["starting_weights"] == "hf-cache" and done.result["starting_weights_source"] == source
    assert any(source in e["message"] for e in jobs.events(done.id))
    code, out, _ = cli("train", "list")                             # the list names them as `train show` does
    row = next(line for line in out.splitlines() if line.startswith(done.id))
    assert code == 0 and source in row and "hf-cache" not in out
    assert f"starting_weights  {source}" in cli("train", "show", done.id)[1]
    assert done.result["best_epoch"] in (1, 2)
    assert any(f"kept the weights of epoch {done.result['best_epoch']} of 2" in e["message"]
               for e in jobs.events(done.id))
    trained = load_file(str(Path(done.result["pytorch_path"]) / "model.safetensors"))
    hub = load_file(str(online.weights))
    pair = torch.stack([trained["layer4.1.conv2.weight"].flatten(), hub["layer4.1.conv2.weight"].flatten()])
    corr = float(torch.corrcoef(pair)[0, 1])
    print(f"fine-tuned from {source}: kept epoch {done.result['best_epoch']} of 2, val accuracy "
          f"{done.result['val_accuracy']}, layer4.1.conv2 correlation with the Hub's weights {corr:.4f}")
    assert corr > 0.9                                   # the body started from the Hub's weights
    assert trained["fc.weight"].shape == (3, 512)       # the head is new
    # the card records them
    from imgai.hub.publish import _training

    assert _training(registry.get("pets"))["weights_repo"] == REPO


def test_offline_a_new_model_trains_from_scratch_and_says_so(weights_hub, imgai_home, tmp_path, monkeypatch,
                                                             shapes, cli):
    from imgai import jobs, registry, train

    point_hf_at(monkeypatch, endpoint=weights_hub.url, hf_home=tmp_path / "hf", offline=True, token=None)
    code, out, err = cli("train", "create", "--architecture", "resnet18", "--name", "offline")
    assert code == 0, err
    plan = registry.get("offline").extra["weights"]
    assert plan["state"] == "offline" and plan["job_id"] is None and "from scratch" in out
    assert train.finetune_defaults("offline", shapes).settings == {}
    job = run_here(train.start("offline", data=shapes, dispatch=False,
                               config=train.TrainConfig(epochs=1, image_size=32, batch_size=12)).id)
    assert job.state == jobs.SUCCEEDED, job.error
    assert job.result["starting_weights"] == "scratch" and job.result["starting_weights_source"] is None
    assert any("training from scratch" in e["message"] for e in jobs.events(job.id))


def test_weights_that_do_not_fit_fail_the_job_naming_the_first_tensor(online):
    from imgai import jobs, registry, train

    model = train.create_model("deep", architecture="resnet34")
    plan = registry.get(model.id).extra["weights"]
    assert plan["repo_id"] == MISFIT
    job = _wait(plan["job_id"])
    assert job.state == jobs.FAILED
    assert "do not fit resnet34: first mismatching tensor 'layer1.2.conv1.weight'" in job.error, job.error


def test_the_train_tab_shows_the_fine_tune_defaults(online, shapes):
    from imgai import jobs, registry, train
    from ui.train import finetune_form

    model = train.create_model("tab", architecture="resnet18")
    assert jobs.wait(registry.get(model.id).extra["weights"]["job_id"], timeout=300).state == jobs.SUCCEEDED
    train.add_pipeline("few", shapes)
    optimizer, lr, flip, crop, note = finetune_form(model.id, "few", True)
    assert (optimizer, lr, flip, crop) == ("adamw", 3e-4, "on", "on")
    assert REPO in note and "36 images (< 1,000)" in note
    assert finetune_form(model.id, "few", False)[:4] == ("adamw", 1e-3, "as the data pipeline", "as the data pipeline")


@pytest.mark.parametrize("key", __import__("imgai.train.architectures", fromlist=["x"]).ARCHITECTURES)
def test_every_architecture_names_real_timm_imagenet_weights(key):
    import timm

    from imgai.train.architectures import ARCHITECTURES

    arch = ARCHITECTURES[key]
    owner, _, tag = arch.weights_repo.partition("/")
    assert owner == "timm" and tag in timm.list_pretrained(arch.timm_name + ".*") and "in1k" in tag


def test_fit_keeps_the_best_validation_epochs_weights(tmp_path):
    import torch
    from torch.utils.data import TensorDataset

    from imgai.train.architectures import build_model, get_architecture
    from imgai.train.config import TrainConfig
    from imgai.train.loop import best_epoch, fit, load_checkpoint
    from tests.train_fixtures import TINY_RESNET

    torch.manual_seed(0)
    x, y = torch.randn(48, 3, 16, 16), torch.randint(0, 3, (48,))
    x[y == 1] += 0.5
    train_set, val_set = TensorDataset(x[:32], y[:32]), TensorDataset(x[32:], y[32:])
    model = build_model(get_architecture("resnet18"), 3, model_args=TINY_RESNET)
    states = {}
    config = TrainConfig(epochs=4, batch_size=8, lr=0.05, seed=0, device="cpu")   # val accuracy peaks at epoch 2
    result = fit(model, train_set, val_set, config, num_classes=3, checkpoint=tmp_path / "ckpt.pt",
                 on_checkpoint=lambda s: states.setdefault(s["epoch"], {k: v.clone() for k, v in s["model"].items()}))
    assert result.best_epoch == best_epoch(result.history)
    accuracies = [h["val_accuracy"] for h in result.history]
    assert accuracies[result.best_epoch - 1] == max(accuracies)
    kept = model.state_dict()
    assert all(torch.equal(kept[k], states[result.best_epoch][k]) for k in kept)
    saved = load_checkpoint(tmp_path / "ckpt.pt")
    assert saved["best"]["epoch"] == result.best_epoch      # a resumed run keeps it too
    if result.best_epoch != 4:
        assert all(torch.equal(saved["best"]["model"][k], kept[k]) for k in kept)
