"""Ready-made ONNX models with a label file enter directly as ONNX (the legacy ONNX workflow)."""

import csv
import json
import shutil

import pytest

from imgai import registry
from imgai.errors import ConfigError, StateError, ValidationError
from imgai.sources import add_model
from tests.factories import LABELS, random_image


@pytest.fixture(scope="module")
def exported(tiny_model_cache, tmp_path_factory):
    """model.onnx + preprocess.json of a tiny timm model, as another tool would ship them."""
    from imgai.classify.convert import export_onnx
    from imgai.classify.load import load_model

    loaded = load_model(tiny_model_cache("timm-mobilenetv3"))
    folder = tmp_path_factory.mktemp("exported")
    export_onnx(loaded, folder)
    spec = loaded.preprocess.to_dict()
    del spec["multi_label"]          # left to the label file to decide
    (folder / "preprocess.json").write_text(json.dumps(spec))
    return folder


def _ready_folder(exported, tmp_path, label_file: str):
    folder = tmp_path / "ready"
    folder.mkdir()
    shutil.copyfile(exported / "model.onnx", folder / "tagger.onnx")
    if label_file == "labels.txt":
        (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    elif label_file == "selected_tags.csv":
        with (folder / "selected_tags.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["tag_id", "name", "category", "count"])
            for i, label in enumerate(LABELS):
                w.writerow([i, label, 0, 100])
    return folder


@pytest.mark.parametrize("label_file", ["labels.txt", "selected_tags.csv"])
def test_ready_onnx_model_enters_as_onnx_validated(imgai_home, exported, tmp_path, cli, label_file):
    folder = _ready_folder(exported, tmp_path, label_file)
    code, out, err = cli("models", "add", folder, "--preprocess", exported / "preprocess.json", "--json")
    assert code == 0, err
    model = json.loads(out)
    assert (model["type"], model["conversion"], model["library"]) == ("ONNX", "N/A", "onnx")
    assert model["validation"]["passed"] and model["validation"]["compared_with_pytorch"] is False
    assert not model["enabled"]
    assert cli("models", "enable", model["id"])[0] == 0
    assert cli("models", "default", model["id"])[0] == 0
    code, out, _ = cli("tag", random_image(tmp_path / "x.png"), "--format", "json", "--top-k", "3")
    tags = json.loads(out)[0]["tags"]
    assert code == 0 and {t["label"] for t in tags} == set(LABELS)
    total = sum(t["score"] for t in tags)
    if label_file == "selected_tags.csv":     # multi-label taggers: independent sigmoid scores
        assert json.loads((imgai_home / "models" / model["id"] / "onnx" / "preprocess.json").read_text())["multi_label"]
        assert abs(total - 1) > 1e-3
    else:
        assert abs(total - 1) < 1e-4


def test_ready_onnx_without_preprocessing_asks_for_the_size(imgai_home, exported, tmp_path):
    """The exported graph accepts any size (every axis dynamic) and nothing else says one."""
    folder = _ready_folder(exported, tmp_path, "labels.txt")
    with pytest.raises(ConfigError, match="--size N"):
        add_model(str(folder))
    assert registry.list_models() == []
    model = add_model(str(folder), preprocess_options={"size": 32})
    assert model.preprocessing_assumed and model.valid


def test_ready_onnx_without_labels_is_refused(imgai_home, exported, tmp_path):
    folder = _ready_folder(exported, tmp_path, "none")
    shutil.copyfile(exported / "preprocess.json", folder / "preprocess.json")
    with pytest.raises(ValidationError, match="no label file"):
        add_model(str(folder))


def test_ready_onnx_with_wrong_label_count_cannot_be_enabled(imgai_home, exported, tmp_path):
    folder = _ready_folder(exported, tmp_path, "none")
    shutil.copyfile(exported / "preprocess.json", folder / "preprocess.json")
    (folder / "labels.txt").write_text("one\ntwo\n")
    model = add_model(str(folder))
    assert model.type == "ONNX" and not model.valid
    assert "outputs 3 scores but labels.json has 2 labels" in model.error
    with pytest.raises(StateError, match="only a validated ONNX model"):
        registry.set_enabled(model.id, True)


def test_damaged_onnx_is_refused_before_registering(imgai_home, exported, tmp_path):
    folder = _ready_folder(exported, tmp_path, "labels.txt")
    shutil.copyfile(exported / "preprocess.json", folder / "preprocess.json")
    (folder / "tagger.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ValidationError, match="tagger.onnx"):
        add_model(str(folder))
    assert registry.list_models() == []
