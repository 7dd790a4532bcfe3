"""Everything that must fail before a training job exists: bad settings, unusable data, unsafe
zips; and the architecture table, data pipelines and previews that the UI and CLI show."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from tests.train_fixtures import TINY_RESNET, make_shapes


@pytest.mark.parametrize("settings, named", [
    ({"lr": -0.001}, "lr=-0.001"),
    ({"lr": 0}, "lr=0"),
    ({"beta1": 1.0}, "beta1=1.0"),
    ({"beta2": 1.5}, "beta2=1.5"),
    ({"eps": 0.0}, "eps=0.0"),
    ({"weight_decay": -1.0}, "weight_decay=-1.0"),
    ({"prefetch_factor": 2}, "prefetch_factor=2 needs num_workers > 0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"epochs": 2.5}, "epochs=2.5"),
    ({"device": "tpu"}, "device 'tpu' is not one of auto, cpu, cuda, mps"),
    ({"optimizer": "sgd"}, "optimizer 'sgd' is not one of adam, adamw"),
    ({"loss": "mse"}, "loss 'mse'"),
    ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
    ({"loss": "bce", "label_smoothing": 0.1}, "applies to cross_entropy only"),
    ({"val_split": 0.95}, "val_split=0.95"),
    ({"image_size": 8}, "image_size=8"),
])
def test_bad_settings_name_the_value_and_the_fix(settings, named):
    from imgai.errors import ConfigError
    from imgai.train import TrainConfig

    with pytest.raises(ConfigError) as info:
        TrainConfig(**settings)
    assert named in str(info.value)
    assert any(word in str(info.value) for word in ("use", "e.g.", "set", "must", "one of"))


def test_a_device_that_is_not_present_is_refused():
    import torch

    from imgai.errors import ConfigError
    from imgai.train import TrainConfig, available_devices

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "cuda" not in available_devices()
    with pytest.raises(ConfigError, match=r"device 'cuda' is not available on this machine \(present: auto, cpu"):
        TrainConfig(device="cuda")
    assert TrainConfig(device="auto").resolved_device() == "cpu"


def test_prefetch_is_fine_with_workers_and_unknown_keys_are_refused():
    from imgai.errors import ConfigError
    from imgai.train import TrainConfig

    assert TrainConfig(num_workers=2, prefetch_factor=4).prefetch_factor == 4
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def _expect_data_error(data, match, *, config=None):
    from imgai import jobs, registry, train
    from imgai.errors import DataError

    model = train.create_model("m", architecture="resnet18", model_args=TINY_RESNET) \
        if not registry.list_models() else registry.get("m")
    with pytest.raises(DataError, match=match):
        train.start(model.id, data=data, config=config or train.TrainConfig(epochs=1))
    assert jobs.list_jobs(kind="train") == []                         # nothing was queued
    assert registry.get(model.id).training == "Untrained"


def test_unusable_data_fails_before_the_job_starts(imgai_home, tmp_path):
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    _expect_data_error(empty, "no images found")

    one_class = make_shapes(tmp_path / "one", per_class=4, classes=("circle",))
    _expect_data_error(one_class, r"only one class \(circle\)")

    broken = tmp_path / "broken"
    for label in ("a", "b"):
        (broken / label).mkdir(parents=True)
        (broken / label / "x.png").write_bytes(b"not an image at all")
        (broken / label / "y.jpg").write_bytes(b"")
    _expect_data_error(broken, "none of the 4 images")

    thin = make_shapes(tmp_path / "thin", per_class=5)
    for extra in sorted((thin / "square").iterdir())[1:]:
        extra.unlink()
    _expect_data_error(thin, "class 'square' has only 1 readable image")


def test_data_check_counts_flags_unreadable_and_skips_them(imgai_home, tmp_path):
    from imgai.train import check_data
    from imgai.train.data import scan

    data = make_shapes(tmp_path / "d", per_class=6)
    good = (data / "circle" / "circle-000.png").read_bytes()
    (data / "circle" / "truncated.png").write_bytes(good[: len(good) // 2])
    (data / "square" / "notes.txt").write_text("ignored: not an image suffix")
    (data / "loose.png").write_bytes(good)
    report = check_data(data)
    assert report.ok
    assert report.counts == {"circle": 6, "square": 6, "triangle": 6}
    assert [rel for rel, _ in report.unreadable] == ["circle/truncated.png"]
    assert any("unreadable" in w for w in report.warnings)
    assert any("directly in" in w for w in report.warnings)
    assert any("only 6 images" in w for w in report.warnings)
    assert len(scan(data, exclude={"circle/truncated.png"}).items) == 18


def test_multi_label_folders_group_by_file_name(tmp_path):
    from imgai.train.data import scan

    data = make_shapes(tmp_path / "ml", per_class=3)
    (data / "square" / "circle-000.png").write_bytes((data / "circle" / "circle-000.png").read_bytes())
    samples = scan(data, multi_label=True)
    both = dict(samples.items)["circle/circle-000.png"]
    assert both == [0, 1] and len(samples.items) == 9


def _zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _images_zip(tmp_path: Path) -> dict[str, bytes]:
    data = make_shapes(tmp_path / "z", per_class=3, size=24)
    return {f"wrapped/{p.relative_to(data).as_posix()}": p.read_bytes() for p in sorted(data.rglob("*.png"))}


def test_zip_upload_unpacks_into_the_data_folder(imgai_home, tmp_path):
    from imgai.train import add_pipeline, check_data, get_pipeline, list_pipelines, remove_pipeline

    archive = tmp_path / "shapes.zip"
    archive.write_bytes(_zip({**_images_zip(tmp_path), "__MACOSX/._junk": b"x"}))
    pipeline = add_pipeline("Zipped Shapes", archive, val_split=0.3, image_size=24, crop=True)
    assert pipeline.name == "zipped-shapes" and pipeline.kind == "zip" and pipeline.location == "shapes.zip"
    root = Path(pipeline.root)
    assert root.is_relative_to(imgai_home) and root.name == "wrapped"   # stepped into the wrapping folder
    assert check_data(root).counts == {"circle": 3, "square": 3, "triangle": 3}
    assert [p.name for p in list_pipelines()] == ["zipped-shapes"]
    assert get_pipeline("Zipped Shapes").augmentations == ["crop"]
    remove_pipeline("zipped-shapes")
    assert not root.exists() and list_pipelines() == []


@pytest.mark.parametrize("entries, symlink, match", [
    ({"../escape.png": b"x"}, None, "points outside"),
    ({"/abs/escape.png": b"x"}, None, "points outside"),
    ({"ok/a.png": b"x"}, "ok/link.png", "symbolic link"),
])
def test_unsafe_zips_are_refused(imgai_home, tmp_path, entries, symlink, match):
    from imgai.errors import UnsafeFileError
    from imgai.train import add_pipeline

    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip(entries, symlink=symlink))
    with pytest.raises(UnsafeFileError, match=match):
        add_pipeline("bad", archive)
    assert not (tmp_path / "escape.png").exists()
    unpacked = imgai_home / "train" / "datasets"
    assert not unpacked.exists() or not any(unpacked.iterdir())      # nothing half-extracted left behind


def test_zip_size_limit(imgai_home, tmp_path, monkeypatch):
    from imgai.errors import UnsafeFileError
    from imgai.train import add_pipeline

    monkeypatch.setenv("IMGAI_MAX_ZIP_BYTES", "1000")
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip({"a/x.png": b"0" * 800, "b/y.png": b"0" * 800}))
    with pytest.raises(UnsafeFileError, match="more than the limit"):
        add_pipeline("big", archive)


def test_architectures_table_and_unknown_names(imgai_home):
    from imgai.errors import ConfigError
    from imgai.train import ARCHITECTURES, architectures_table, create_model, get_architecture

    rows = {r["architecture"]: r for r in architectures_table()}
    assert list(rows) == list(ARCHITECTURES) and len(rows) == 15
    assert rows["efficientnet_lite0"]["pretrained"] and rows["efficientnet_lite0"]["timm_name"] == "tf_efficientnet_lite0"
    for row in rows.values():      # cached weights or a plain "from scratch" note, never a download
        assert row["pretrained"] or "from scratch" in row["starting_weights"]
    assert get_architecture("mobilenetv2_100").key == "mobilenet_v2"
    with pytest.raises(ConfigError, match="unknown architecture 'vgg16'; trainable architectures: resnet18"):
        get_architecture("vgg16")
    with pytest.raises(ConfigError, match="do not fit timm's resnet18"):
        create_model("x", architecture="resnet18", model_args={"no_such_arg": 1})
    create_model("taken", architecture="resnet18")
    with pytest.raises(ConfigError, match="exists already"):
        create_model("taken", architecture="resnet34")


@pytest.mark.parametrize("key", ["resnet18", "efficientnet_b0", "mobilenet_v2", "mobilenet_v3_small", "convnext_atto",
                                 "vit_tiny", "fastvit_t8"])
def test_each_family_builds_with_a_fresh_head(key):
    import torch

    from imgai.train.architectures import build_model, get_architecture

    model = build_model(get_architecture(key), 3, image_size=32).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_preview_shows_transformed_samples(imgai_home, tmp_path):
    from imgai.train import add_pipeline
    from imgai.train.images import preview_grid, preview_samples

    data = make_shapes(tmp_path / "p", per_class=4, size=48)
    pipeline = add_pipeline("prev", data, image_size=32, flip=True, color_jitter=True)
    tiles = preview_samples(pipeline, count=6)
    assert len(tiles) == 6 and all(im.size == (32, 32) for im, _ in tiles)
    assert {label for _, label in tiles} <= {"circle", "square", "triangle"}
    assert preview_grid(pipeline, count=6, columns=3).size == (3 * 36, 2 * 36)
