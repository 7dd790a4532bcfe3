"""Real-world ONNX formats: WD-style taggers (selected_tags.csv, NHWC, Sigmoid in the graph) scored
exactly as the WD recipe, bare ONNX files with assumed preprocessing, and what is refused."""

import json

import numpy as np
import pytest
from PIL import Image

from imgai import registry
from imgai.classify.labels import KAOMOJI
from imgai.errors import ConfigError, UnsupportedModelError, ValidationError
from imgai.sources import add_model
from tests.onnx_factories import (WD_TAGS, linear_graph, make_bare_onnx, make_wd_tagger, wd_reference_scores,
                                  write_selected_tags)

SIZE = 32


@pytest.fixture
def wd_images(tmp_path):
    """Non-square RGBA (transparent corners), a wide RGB photo, and a tall palette image."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "images"
    folder.mkdir()
    rgba = rng.integers(0, 256, (30, 50, 4), dtype=np.uint8)
    rgba[:10, :10, 3] = 0
    rgba[20:, 40:, 3] = 128
    Image.fromarray(rgba, "RGBA").save(folder / "a_rgba.png")
    Image.fromarray(rng.integers(0, 256, (40, 90, 3), dtype=np.uint8), "RGB").save(folder / "b_wide.png")
    Image.fromarray(rng.integers(0, 256, (70, 33, 3), dtype=np.uint8), "RGB").convert("P").save(folder / "c_tall.png")
    return sorted(folder.iterdir())


@pytest.fixture
def wd_model(imgai_home, tmp_path):
    folder = make_wd_tagger(tmp_path / "wd-vit-tagger-v3", size=SIZE)
    model = add_model(str(folder))
    registry.set_enabled(model.id, True)
    registry.set_default(model.id)
    return folder, registry.get(model.id)


def _tag_json(cli, paths, *extra):
    code, out, err = cli("tag", *paths, "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_wd_tagger_scores_exactly_as_the_wd_recipe(wd_model, wd_images, cli, imgai_home):
    folder, model = wd_model
    pre = model.extra["preprocess"]
    assert pre["origin"] == "WD tagger recipe" and not pre["assumed"]
    assert any("config.json" in r and "NCHW" in r and "448×448" in r for r in pre["ignored"]), pre["ignored"]
    spec = json.loads((imgai_home / "models" / model.id / "onnx" / "preprocess.json").read_text())
    assert (spec["layout"], spec["channel_order"], spec["pad_color"], spec["interpolation"]) == \
        ("NHWC", "BGR", 255, "bicubic")
    reference = wd_reference_scores(folder / "model.onnx", wd_images, SIZE)
    results = _tag_json(cli, wd_images, "--threshold", "0")
    names = [n for n, _ in WD_TAGS]
    worst = 0.0
    for result, ref in zip(results, reference):
        got = {t["label"]: t["score"] for t in result["tags"]}
        got[result["rating"]["label"]] = result["rating"]["score"]
        for label, score in got.items():
            worst = max(worst, abs(score - ref[names.index(label)]))
        rating_ref = max(range(4), key=lambda i: ref[i])
        assert result["rating"]["label"] == names[rating_ref]
        assert {t["label"] for t in result["tags"]} == set(names[4:])     # threshold 0: every non-rating tag
    print(f"WD recipe: max |score difference| = {worst:.2e} over {len(wd_images)} images")
    assert worst <= 1e-5


def test_wd_categories_and_default_thresholds(wd_model, wd_images, cli):
    folder, _ = wd_model
    reference = wd_reference_scores(folder / "model.onnx", wd_images, SIZE)
    categories = {n: c for n, c in WD_TAGS}
    for result, ref in zip(_tag_json(cli, wd_images), reference):
        want = {n for i, (n, c) in enumerate(WD_TAGS)
                if (c == 0 and ref[i] >= 0.35) or (c == 4 and ref[i] >= 0.85)}
        assert {t["label"] for t in result["tags"]} == want
        assert all(t["category"] == {0: "general", 4: "character"}[categories[t["label"]]] for t in result["tags"])
        assert "hatsune_miku" in want and "kafuu_chino" not in want and result["rating"]["category"] == "rating"
    # each threshold on its own, and --threshold setting both
    strict = _tag_json(cli, wd_images[:1], "--general-threshold", "0.9", "--character-threshold", "0.99")[0]
    want = {n for i, (n, c) in enumerate(WD_TAGS) if (c == 0 and reference[0][i] >= 0.9)
            or (c == 4 and reference[0][i] >= 0.99)}
    assert {t["label"] for t in strict["tags"]} == want
    both = _tag_json(cli, wd_images[:1], "--threshold", "0.6")[0]
    assert {t["label"] for t in both["tags"]} == {n for i, (n, c) in enumerate(WD_TAGS)
                                                  if c in (0, 4) and reference[0][i] >= 0.6}


def test_wd_caption_options(wd_model, wd_images, cli):
    assert "^_^" in KAOMOJI
    tags = _tag_json(cli, wd_images[:1], "--threshold", "0", "--underscores-to-spaces",
                     "--exclude-tags", "smile,blue eyes")[0]["tags"]
    labels = [t["label"] for t in tags]
    assert "long hair" in labels and "^_^" in labels and "hatsune miku" in labels
    assert "smile" not in labels and "blue eyes" not in labels and "blue_eyes" not in labels
    code, _, err = cli("tag", wd_images[0], "--threshold", "0", "--sidecar", "txt")
    assert code == 0, err
    written = wd_images[0].with_suffix(".txt").read_text().strip().split(", ")
    assert written[:2] == ["hatsune_miku", "kafuu_chino"]            # character tags first
    assert set(written[2:]) == {n for n, c in WD_TAGS if c == 0}      # no rating in captions


def test_models_show_records_the_ignored_config(wd_model, cli):
    _, model = wd_model
    code, out, _ = cli("models", "show", model.id)
    assert code == 0
    assert "WD tagger recipe" in out and "ignored" in out and "config.json" in out


# -- bare ONNX ---------------------------------------------------------------------------------

LABELS = ["apple", "pear", "plum"]


def test_bare_onnx_is_added_with_assumed_preprocessing(imgai_home, tmp_path, cli, wd_images):
    folder = make_bare_onnx(tmp_path / "bare", LABELS, size=24)
    code, out, err = cli("models", "add", folder, "--json")
    assert code == 0, err
    model = json.loads(out)
    pre = model["extra"]["preprocess"]
    assert pre["assumed"] and pre["origin"] == "inferred from the graph"
    assert model["validation"]["passed"]
    mid = model["id"]
    assert "ASSUMED" in cli("models", "show", mid)[1]
    assert "assumed" in cli("models", "list")[1]
    from imgai.presentation.models import MODEL_COLUMNS, model_rows

    shown = next(dict(zip(MODEL_COLUMNS, r)) for r in model_rows(registry.list_models()) if r[0] == mid)
    assert "preprocessing assumed" in shown["Validation"]   # the Convert tab
    for action in ("enable", "default"):
        assert cli("models", action, mid)[0] == 0
    code, out, err = cli("tag", wd_images[1], "--format", "json")
    assert code == 0 and "assumed" in err and f"imgai models preprocess {mid} --confirm" in err
    tags = json.loads(out)[0]["tags"]
    assert {t["label"] for t in tags} == set(LABELS) and abs(sum(t["score"] for t in tags) - 1) < 1e-4
    # the spec: 24×24 from the graph, ImageNet mean/std, resize + center crop
    from imgai.classify.preprocess import IMAGENET_MEAN, PreprocessSpec

    saved = PreprocessSpec.load(imgai_home / "models" / mid / "onnx" / "preprocess.json")
    assert saved.input_size == (24, 24) and saved.resize_mode == "crop" and tuple(saved.mean) == IMAGENET_MEAN
    # confirm: no longer assumed
    code, out, err = cli("models", "preprocess", mid, "--confirm")
    assert code == 0, err
    assert not registry.get(mid).extra["preprocess"]["assumed"]
    assert "assumed" not in cli("tag", wd_images[1])[2]
    # edit: pad + 0.5 + bicubic, saved, re-validated, still not assumed
    code, out, err = cli("models", "preprocess", mid, "--resize-mode", "pad", "--mean-std", "0.5",
                         "--interpolation", "bicubic")
    assert code == 0, err
    saved = PreprocessSpec.load(imgai_home / "models" / mid / "onnx" / "preprocess.json")
    assert (saved.resize_mode, saved.mean_std, saved.interpolation) == ("pad", "0.5", "bicubic")
    assert registry.get(mid).valid and registry.get(mid).extra["preprocess"]["origin"] == "edited"


def test_bare_onnx_with_preprocessing_flags(imgai_home, tmp_path, cli):
    folder = make_bare_onnx(tmp_path / "bare", LABELS, size=24, layout="NHWC", label_file="labels.json")
    code, out, err = cli("models", "add", folder, "--mean-std", "none", "--channel-order", "BGR",
                         "--resize-mode", "squash", "--json")
    assert code == 0, err
    model = json.loads(out)
    assert not model["extra"]["preprocess"]["assumed"] and model["validation"]["passed"]
    from imgai.classify.preprocess import PreprocessSpec

    saved = PreprocessSpec.load(imgai_home / "models" / model["id"] / "onnx" / "preprocess.json")
    assert (saved.layout, saved.channel_order, saved.resize_mode, saved.mean_std) == ("NHWC", "BGR", "squash", "none")
    # a layout that contradicts the graph is refused, naming both
    other = make_bare_onnx(tmp_path / "bare2", LABELS, size=24, layout="NHWC")
    with pytest.raises(ConfigError, match="NCHW.*NHWC"):
        add_model(str(other), preprocess_options={"layout": "NCHW"})


# -- bad input ----------------------------------------------------------------------------------

def _save(model, folder, labels=LABELS):
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "labels.txt").write_text("\n".join(labels))
    return folder


def test_an_onnx_with_two_inputs_is_refused(imgai_home, tmp_path):
    folder = _save(linear_graph(shape=["batch", 3, 8, 8], n_out=3, extra_inputs=["mask"]), tmp_path / "two")
    with pytest.raises(UnsupportedModelError, match=r"2 inputs \('input', 'mask'\)"):
        add_model(str(folder))
    assert registry.list_models() == []


def test_a_non_image_input_is_refused(imgai_home, tmp_path):
    folder = _save(linear_graph(shape=["batch", 192], n_out=3), tmp_path / "vector")
    with pytest.raises(UnsupportedModelError, match=r"input 'input' has shape \[\?x192\], not an image"):
        add_model(str(folder))


def test_a_non_float_input_is_refused(imgai_home, tmp_path):
    from onnx import TensorProto

    folder = _save(linear_graph(shape=["batch", 3, 8, 8], n_out=3, elem_type=TensorProto.INT64), tmp_path / "ints")
    with pytest.raises(UnsupportedModelError, match="input 'input' is int64, not a float tensor"):
        add_model(str(folder))


def test_dynamic_size_without_config_asks_for_the_size(imgai_home, tmp_path):
    folder = _save(linear_graph(shape=["batch", 3, "height", "width"], n_out=3), tmp_path / "dynamic")
    with pytest.raises(ConfigError, match="accepts any image size.*--size N"):
        add_model(str(folder))
    assert registry.list_models() == []


def test_selected_tags_rows_must_match_the_outputs(imgai_home, tmp_path):
    folder = make_wd_tagger(tmp_path / "wd", size=SIZE)
    write_selected_tags(folder / "selected_tags.csv", WD_TAGS[:-2])
    with pytest.raises(ValidationError, match=r"selected_tags.csv has 10 tags but model.onnx outputs 12 scores"):
        add_model(str(folder))
    assert registry.list_models() == []


# -- the app: the Add panel's preprocessing fields, the Tag tab's thresholds ----------------------

def test_app_adds_onnx_with_preprocessing_fields_and_tags_with_thresholds(bare_server, tmp_path, wd_images):
    client = bare_server.client()
    bare = make_bare_onnx(tmp_path / "bare", LABELS, size=24, layout="NHWC")
    message = client.predict(str(bare), "bare", 24, "0.5", "BGR", "from the model", "squash", "bicubic",
                             api_name="/add_model")
    assert "Added **bare** as ONNX / N/A" in message and "squash to 24×24 bicubic, 0.5 mean/std, BGR, NHWC" in message
    assert "Assumed" not in message
    message = client.predict(str(make_wd_tagger(tmp_path / "wd", size=SIZE)), "wd", api_name="/add_model")
    assert "WD tagger recipe" in message and "ignored config.json" in message
    for name in ("enable", "set_default"):
        client.predict("wd", api_name=f"/{name}")
    reference = wd_reference_scores(tmp_path / "wd" / "model.onnx", wd_images[:1], SIZE)[0]
    summary, _, _, table, _ = client.predict([], str(wd_images[0].parent), "wd", 0, 0.0, 0.5, 0.9, True, "smile",
                                          api_name="/tag")
    assert "Tagged 3 of 3 images" in summary
    want = [n.replace("_", " ") if n != "^_^" else n for i, (n, c) in enumerate(WD_TAGS)
            if n != "smile" and ((c == 0 and reference[i] >= 0.5) or (c == 4 and reference[i] >= 0.9))]
    shown = table["data"][0][1]
    rating = WD_TAGS[int(np.argmax(reference[:4]))][0]
    assert shown.startswith(f"[{rating} ")
    assert sorted(part.rsplit(" ", 1)[0] for part in shown.split("] ", 1)[1].split(", ")) == sorted(want)


def test_a_wd_tagger_downloads_from_the_hub_without_its_safetensors_twin(imgai_home, tmp_path, monkeypatch):
    from tests.fakehub_store import Store
    from tests.hub_fixtures import FakeHub, point_hf_at

    from imgai.hub.download import fetch_and_register

    root = tmp_path / "hub"
    Store(root).publish_folder("SmilingWolf/wd-tiny-tagger-v3", make_wd_tagger(tmp_path / "wd", size=SIZE),
                               meta={"library_name": "timm", "pipeline_tag": "image-classification", "tags": ["onnx"]})
    hub = FakeHub(root)
    try:
        point_hf_at(monkeypatch, endpoint=hub.url, hf_home=tmp_path / "hf", offline=False, token=None)
        result = fetch_and_register("SmilingWolf/wd-tiny-tagger-v3")
        fetched = [line for line in hub.requests() if "/resolve/" in line]
    finally:
        hub.stop()
    model = registry.get(result["model_id"])
    assert (model.type, model.library, model.valid) == ("ONNX", "onnx", True)
    assert model.extra["preprocess"]["origin"] == "WD tagger recipe"
    assert any("selected_tags.csv" in line for line in fetched)
    assert not any("model.safetensors" in line for line in fetched)


def test_models_add_says_which_preprocessing_it_assumed(imgai_home, tmp_path, cli):
    """The terminal gets the preprocessing `models show` gives: assumed, and the command that confirms it."""
    folder = make_bare_onnx(tmp_path / "bare", LABELS, size=24, layout="NHWC", label_file="labels.json")
    code, out, err = cli("models", "add", folder)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("added bare: ONNX") and lines[1].startswith("preprocessing ")
    assert "ASSUMED" in lines[1] and "`imgai models preprocess bare --confirm`" in lines[1]
