"""Training really learns: a tiny timm model on synthetic shapes reaches ≥ 90 % validation
accuracy, is saved in the timm folder format, converts to ONNX and tags new images correctly.
Also: fine-tuning EfficientNet-Lite0 from the embedded demo weights, and retraining as versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.train_fixtures import (TINY_RESNET, make_new_images, make_shapes, one_thread,  # noqa: F401
                                  run_here)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_shapes(tmp_path / "shapes", per_class=40, size=40)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_model_learns_then_converts_and_tags(imgai_home, shapes, tmp_path):
    from imgai import jobs, registry, train
    from imgai.classify.convert import convert
    from imgai.classify.tag import TagOptions, tag

    model = train.create_model("Shapes", architecture="resnet18", model_args=TINY_RESNET)
    assert (model.type, model.conversion, model.training) == ("PyTorch", "NotConverted", "Untrained")
    assert not model.can_convert                       # untrained models are not convertible
    pipeline = train.add_pipeline("shapes", shapes, val_split=0.25, image_size=40)
    config = train.TrainConfig(epochs=6, batch_size=16, lr=3e-3, seed=0)
    job = train.start(model.id, data=pipeline.name, config=config, dispatch=False)
    assert registry.get(model.id).training == "Training"

    job = run_here(job.id)
    assert job.state == jobs.SUCCEEDED, job.error
    result = job.result
    assert result["val_accuracy"] >= 0.9, result["history"]
    assert result["train_images"] == 90 and result["val_images"] == 30
    assert set(result["per_class_accuracy"]) == {"circle", "square", "triangle"}
    matrix = result["confusion_matrix"]
    assert sum(map(sum, matrix)) == 30 and sum(matrix[i][i] for i in range(3)) / 30 == pytest.approx(result["val_accuracy"])
    # a curve point per epoch, sent as job events with data
    curve = train.curves(job.id)
    assert [p["epoch"] for p in curve] == [1, 2, 3, 4, 5, 6]
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]
    assert train.view(job).epoch_ratio == "6/6"

    # saved in timm's folder format, in a versioned run folder, registered PyTorch / NotConverted
    model = registry.get(model.id)
    run_dir = Path(model.pytorch_path)
    assert run_dir == imgai_home / "models" / model.id / "pytorch" / "runs" / "1"
    config_json = json.loads((run_dir / "config.json").read_text())
    assert config_json["architecture"] == "resnet18"
    assert config_json["label_names"] == ["circle", "square", "triangle"]
    assert config_json["pretrained_cfg"]["input_size"] == [3, 40, 40]
    assert config_json["model_args"] == TINY_RESNET
    assert (model.type, model.conversion, model.training) == ("PyTorch", "NotConverted", "Trained")
    assert model.can_convert

    # Convert and Tag take over, as for a downloaded model
    converted = convert(model.id)
    assert converted.type == "ONNX" and converted.valid, converted.validation
    truth = make_new_images(tmp_path / "new", per_class=4)
    results = tag(list(truth), model_id=model.id, options=TagOptions(top_k=1))
    correct = sum(r.error is None and r.tags[0].label == truth[Path(r.path)] for r in results)
    assert correct >= 11, [(Path(r.path).name, r.tags[:1], r.error) for r in results]

    # retraining a converted model leaves its ONNX tagger alone: the new run is a new model
    again = train.retrain(job.id, epochs=1, dispatch=False)
    assert again.subject != model.id and registry.get(again.subject).name == "Shapes v2"
    assert again.params["retrain_of"] == job.id
    assert registry.get(model.id).type == "ONNX"
    train.cancel(again.id)
    assert registry.get(again.subject).training == "Untrained"


def test_retrain_makes_a_new_version(imgai_home, shapes):
    from imgai import jobs, registry, train

    model = train.create_model("versions", architecture="resnet18", model_args=TINY_RESNET)
    first = run_here(train.start(model.id, data=shapes, config=train.TrainConfig(epochs=1, batch_size=32,
                                                                                   image_size=32), dispatch=False).id)
    assert first.state == jobs.SUCCEEDED, first.error
    run1 = Path(registry.get(model.id).pytorch_path)
    before = _digest(run1 / "model.safetensors")

    second = train.retrain(first.id, epochs=2, lr=2e-3, dispatch=False)
    assert second.subject == model.id and second.params["run"] == 2
    assert second.params["config"]["epochs"] == 2 and second.params["config"]["lr"] == 2e-3
    assert second.params["config"]["image_size"] == 32          # unchanged settings carry over
    second = run_here(second.id)
    assert second.state == jobs.SUCCEEDED, second.error
    current = registry.get(model.id)
    assert Path(current.pytorch_path) == run1.parent / "2"
    assert _digest(run1 / "model.safetensors") == before        # runs are versions, not overwritten
    assert sorted(current.extra["runs"]) == ["1", "2"] and current.extra["current_run"] == 2


def test_lite0_fine_tunes_from_the_demo_weights(imgai_home, shapes):
    from safetensors.torch import load_file

    from imgai import jobs, train
    from imgai.demo import demo_weights_folder
    from imgai.train.architectures import get_architecture, starting_weights

    weights = starting_weights(get_architecture("efficientnet_lite0"))
    assert weights.kind == "demo" and weights.mean == (0.5, 0.5, 0.5)
    assert any(row["architecture"] == "efficientnet_lite0" and "demo" in row["starting_weights"]
               for row in train.architectures_table())
    assert not (imgai_home / "demo").exists()     # listing only reads (writing here raced with the demo job)
    model = train.create_model("lite", architecture="efficientnet_lite0")
    job = run_here(train.start(model.id, data=shapes, dispatch=False,
                               config=train.TrainConfig(epochs=2, batch_size=16, lr=1e-3, image_size=64)).id)
    assert job.state == jobs.SUCCEEDED, job.error
    assert job.result["starting_weights"] == "demo"
    assert job.result["val_accuracy"] >= 0.8, job.result["history"]
    trained = load_file(str(Path(job.result["pytorch_path"]) / "model.safetensors"))
    demo = load_file(str(demo_weights_folder() / "model.safetensors"))
    # the body started from ImageNet weights (fine-tuned a little), the head is new
    stem = trained["conv_stem.weight"].flatten()
    import torch

    assert torch.corrcoef(torch.stack([stem, demo["conv_stem.weight"].flatten()]))[0, 1] > 0.9
    assert trained["classifier.weight"].shape == (3, 1280)
    cfg = json.loads((Path(job.result["pytorch_path"]) / "config.json").read_text())
    assert cfg["architecture"] == "tf_efficientnet_lite0" and cfg["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5]
