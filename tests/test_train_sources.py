"""Where training starts from and reads from, offline: ImageNet weights found in the local
Hugging Face or torch hub cache (never downloaded, a pickle that runs code refused), a Hub
`imagefolder` dataset from the cache, and multi-label (BCE) folders saved as such."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.train_fixtures import TINY_RESNET, make_shapes, run_here, one_thread  # noqa: F401 (fixture)

COMMIT = "0123456789abcdef0123456789abcdef01234567"

pytestmark = pytest.mark.usefixtures("one_thread")


def _fake_hf_cache(cache: Path, repo_type: str, repo_id: str) -> Path:
    """The layout huggingface_hub reads with local_files_only: refs/main → snapshots/<commit>/."""
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    return snapshot


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_weights_from_the_hugging_face_cache_start_the_body(hf_cache):
    import timm
    import torch
    from safetensors.torch import save_file

    from imgai.train.architectures import build_model, get_architecture, starting_weights

    arch = get_architecture("mobilenet_v3_small")
    assert starting_weights(arch).kind == "scratch"
    torch.manual_seed(1)
    imagenet = timm.create_model("mobilenetv3_small_100")                  # stands in for the real weights
    snapshot = _fake_hf_cache(hf_cache, "model", timm.models.get_pretrained_cfg("mobilenetv3_small_100").hf_hub_id)
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, str(snapshot / "model.safetensors"))

    weights = starting_weights(arch)
    assert weights.kind == "hf-cache" and weights.pretrained and "Hugging Face cache" in weights.describe()
    assert starting_weights(arch, model_args={"drop_rate": 0.1}).kind == "scratch"   # a changed model starts fresh
    model = build_model(arch, 4, weights=weights)
    assert torch.equal(model.conv_stem.weight, imagenet.conv_stem.weight)
    assert model.classifier.weight.shape == (4, 1024)                      # a new head for our classes


def test_torch_hub_cache_is_read_with_weights_only(tmp_path, monkeypatch, hf_cache):
    import timm
    import torch

    from imgai.errors import UnsafeFileError
    from imgai.train.architectures import build_model, get_architecture, starting_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    arch = get_architecture("resnet18")
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    target = checkpoints / Path(timm.models.get_pretrained_cfg("resnet18").url).name
    imagenet = timm.create_model("resnet18")
    torch.save(imagenet.state_dict(), target)
    weights = starting_weights(arch)
    assert weights.kind == "torch-hub-cache"
    assert torch.equal(build_model(arch, 3, weights=weights).conv1.weight, imagenet.conv1.weight)

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    target.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    with pytest.raises(UnsafeFileError, match="not a plain weights file"):
        build_model(arch, 3, weights=starting_weights(arch))
    assert not marker.exists()


def test_hub_imagefolder_dataset_from_the_cache(imgai_home, hf_cache, tmp_path):
    from imgai.errors import HubUnavailableError
    from imgai.train import add_pipeline, check_data

    snapshot = _fake_hf_cache(hf_cache, "dataset", "someone/shapes")
    make_shapes(snapshot / "train", per_class=3, size=24)
    make_shapes(snapshot / "test", per_class=1, size=24)
    (snapshot / "README.md").write_text("---\nconfigs: [imagefolder]\n---\n")
    pipeline = add_pipeline("hub shapes", "someone/shapes")
    assert pipeline.kind == "hub" and Path(pipeline.root).name == "train"
    assert check_data(pipeline.root).counts == {"circle": 3, "square": 3, "triangle": 3}
    with pytest.raises(HubUnavailableError, match="not in the local Hugging Face cache"):
        add_pipeline("missing", "someone/not-downloaded")


def test_multi_label_folders_train_with_bce(imgai_home, tmp_path):
    from imgai import jobs, train

    data = make_shapes(tmp_path / "ml", per_class=8, size=32)
    for i in range(3):   # a few pictures filed under two classes
        name = f"circle-{i:03d}.png"
        (data / "square" / name).write_bytes((data / "circle" / name).read_bytes())
    model = train.create_model("multi", architecture="resnet18", model_args=TINY_RESNET)
    job = run_here(train.start(model.id, data=data, dispatch=False,
                               config=train.TrainConfig(loss="bce", epochs=2, batch_size=8, image_size=32)).id)
    assert job.state == jobs.SUCCEEDED, job.error
    assert job.result["multi_label"] and job.result["confusion_matrix"] is None
    assert set(job.result["per_class_accuracy"]) == {"circle", "square", "triangle"}
    config = json.loads((Path(job.result["pytorch_path"]) / "config.json").read_text())
    assert config["multi_label"] is True


def test_vit_tiny_fine_tunes_at_the_data_size_from_224_weights(imgai_home, hf_cache, tmp_path):
    """ViT fixes its input size: imgai builds it at the training size, resamples the ImageNet
    position embeddings to it (timm's own filter) and records img_size, so Convert rebuilds it."""
    import timm
    import torch
    from safetensors.torch import load_file, save_file

    from imgai import jobs, train
    from imgai.train.architectures import build_model, get_architecture, starting_weights

    arch = get_architecture("vit_tiny")
    torch.manual_seed(1)
    imagenet = timm.create_model(arch.timm_name)                            # stands in for the real 224 weights
    snapshot = _fake_hf_cache(hf_cache, "model", arch.weights_repo)
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, str(snapshot / "model.safetensors"))
    weights = starting_weights(arch)
    assert weights.kind == "hf-cache" and weights.mean == (0.5, 0.5, 0.5)
    small = build_model(arch, 3, weights=weights, image_size=32)
    assert small.pos_embed.shape == (1, 1 + 2 * 2, 192)                    # 32 px / 16 px patches: 2×2 + cls
    assert torch.equal(small.patch_embed.proj.weight, imagenet.patch_embed.proj.weight)
    assert torch.equal(small.pos_embed[:, 0], imagenet.pos_embed[:, 0])    # the class token's, kept as is
    assert small.head.weight.shape == (3, 192)

    data = make_shapes(tmp_path / "shapes", per_class=6, size=32)
    model = train.create_model("vit", architecture="vit_tiny")
    job = run_here(train.start(model.id, data=data, dispatch=False,
                               config=train.TrainConfig(epochs=1, batch_size=8, image_size=32)).id)
    assert job.state == jobs.SUCCEEDED, job.error
    assert job.result["starting_weights"] == "hf-cache"
    folder = Path(job.result["pytorch_path"])
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "vit_tiny_patch16_224" and config["model_args"] == {"img_size": 32}
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32] and config["pretrained_cfg"]["mean"] == [0.5] * 3
    rebuilt = timm.create_model(config["architecture"], num_classes=3, **config["model_args"])   # as Convert does
    rebuilt.load_state_dict(load_file(str(folder / "model.safetensors")))
