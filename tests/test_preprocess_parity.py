"""imgai's preprocessing, read from each family's own files, gives the pixels (and so the scores) of
the family's own library: transformers' image processors and pipeline, timm's eval transforms.
On real photos (scikit-image), within 1e-4. The cases live in tests/preprocess_factories.py (the
bench bench/preprocess_parity.py prints the same comparisons as a table)."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

from tests import preprocess_factories as pf

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return pf.photo_paths(tmp_path_factory.mktemp("photos"))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name", [*pf.PROCESSORS, "ViT (legacy feature extractor)"])
def test_transformers_processor_tensors_match(name, photos, tmp_path):
    folder = pf.processor_folder(name, tmp_path / "processor")
    for photo in photos.values():
        assert pf.processor_delta(folder, photo) <= TOLERANCE, (name, photo.name)


@pytest.mark.parametrize("name", pf.MODELS)
def test_scores_match_transformers_pipeline(name, photos, tmp_path):
    folder = pf.model_folder(name, tmp_path / "model")
    for photo in photos.values():
        delta, spread = pf.model_delta(folder, photo)
        assert spread > 0.05, f"{name}: near-uniform scores would match whatever the pixels"
        assert delta <= TOLERANCE, (name, photo.name, delta)


@pytest.mark.parametrize("name", [*pf.TIMM_ARCHITECTURES, *pf.TIMM_CFGS])
def test_timm_eval_transform_tensors_match(name, photos):
    for photo in photos.values():
        ours, theirs = pf.timm_tensors(pf.timm_cfg(name), photo)
        assert float(np.abs(ours - theirs).max()) <= TOLERANCE, (name, photo.name)


@pytest.mark.parametrize("key", pf.TIMM_MODELS)
def test_timm_scores_match(key, photos):
    for photo in photos.values():
        delta, spread = pf.timm_model_delta(key, photo)
        assert spread > 0.05 and delta <= TOLERANCE, (key, photo.name, delta, spread)


def test_the_details_matter(photos, tmp_path):
    """The parity above is not luck: each detail the spec reproduces changes the tensor when dropped."""
    from imgai.classify.load import read_json
    from imgai.classify.preprocess import PreprocessSpec, decode_image

    image = decode_image(photos["chelsea"])

    def spec_of(name):
        folder = pf.processor_folder(name, tmp_path / name.replace(" ", "_"))
        return PreprocessSpec.from_transformers(read_json(folder / "preprocessor_config.json"))

    fast = spec_of("CLIP fast")
    assert fast.resize_backend == "torch"
    as_pil = dataclasses.replace(fast, resize_backend="pil")     # torchvision's antialias ≠ PIL's filter
    assert np.abs(fast(image) - as_pil(image)).max() > 1e-3
    convnext = spec_of("ConvNeXt 224 (crop_pct)")
    assert convnext.resize == {"shortest_edge": 256} and convnext.crop == {"height": 224, "width": 224}
    assert spec_of("ConvNeXt 384 (squash)").resize == {"height": 384, "width": 384}
    border = PreprocessSpec.from_timm(pf.timm_cfg("border"))
    assert border.keep_ratio == "longest" and border.crop_fill == [128, 128, 128]
    filled = border(image)[:, 0, :]      # chelsea is landscape: the top rows are the mean's fill → 0 after normalize
    assert np.abs(filled).max() < 0.01
    assert np.abs(dataclasses.replace(border, crop_fill=None)(image)[:, 0, :]).max() > 0.9


def test_test_time_size_is_taken_only_when_asked():
    from imgai.classify.preprocess import PreprocessSpec

    cfg = pf.timm_cfg("test size")
    assert PreprocessSpec.from_timm(cfg).input_size == (224, 224)
    spec = PreprocessSpec.from_timm(cfg, use_test_size=True)
    assert spec.input_size == (288, 288) and spec.resize == {"shortest_edge": 288}


def test_spec_with_the_new_fields_round_trips_and_old_files_still_load(tmp_path):
    from imgai.classify.preprocess import PreprocessSpec

    spec = PreprocessSpec.from_timm(pf.timm_cfg("border"))
    spec.save(tmp_path / "preprocess.json")
    assert PreprocessSpec.load(tmp_path / "preprocess.json") == spec
    old = {k: v for k, v in spec.to_dict().items() if k not in ("resize_backend", "keep_ratio", "crop_fill")}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert PreprocessSpec.load(tmp_path / "old.json").resize_backend == "pil"


@pytest.mark.parametrize("change, match", [
    ({"resize_backend": "cv2"}, "resize_backend 'cv2' is not one of pil, torch"),
    ({"keep_ratio": "longest", "crop": None}, "keep_ratio 'longest' must be one of shortest, longest"),
    ({"crop_fill": [0, 300, 0]}, r"crop_fill \[0, 300, 0\] must be three whole numbers 0–255"),
    ({"crop_rounding": "ceil"}, "crop_rounding 'ceil' must be 'floor'"),
])
def test_bad_spec_fields_are_named(change, match):
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.errors import ConfigError

    base = dict(resize={"height": 256, "width": 256}, crop={"height": 224, "width": 224})
    with pytest.raises(ConfigError, match=match):
        PreprocessSpec(**{**base, **change})


@pytest.mark.parametrize("processor, match", [
    ({"image_processor_type": "DPTImageProcessor", "size": 384, "keep_aspect_ratio": True},
     "sets keep_aspect_ratio=True; imgai reproduces resize, center crop"),
    ({"image_processor_type": "ImageGPTImageProcessor", "size": 32, "do_color_quantize": True},
     "sets do_color_quantize=True"),
    ({"image_processor_type": "ViTImageProcessor", "do_resize": False}, "do_resize false"),
    ({"image_processor_type": "FooImageProcessor"}, "names image processor 'Foo' and no size"),
    ({"image_processor_type": "ViTImageProcessor", "size": {"longest_edge": 512}}, "size {'longest_edge': 512}"),
])
def test_processor_configs_imgai_cannot_reproduce_are_refused_by_name(processor, match):
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        PreprocessSpec.from_transformers(processor)


def test_timm_crop_modes_imgai_cannot_reproduce_are_refused():
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.errors import ConfigError

    with pytest.raises(ConfigError, match="timm crop_mode 'random' is not one of center, squash, border"):
        PreprocessSpec.from_timm({"input_size": (3, 224, 224), "crop_mode": "random"})


def test_a_processor_size_the_network_refuses_is_named_with_both_values():
    """The check load_model runs: a ViT's position embeddings fix its size; a DINOv2 interpolates."""
    import timm
    import torch

    from imgai.classify.load import check_input_size
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.errors import UnsupportedModelError

    torch.manual_seed(0)
    spec = PreprocessSpec.from_transformers({"image_processor_type": "ViTImageProcessor", "size": 48})
    vit, _ = pf._tiny("ViT")          # image_size 32
    with pytest.raises(UnsupportedModelError, match="preprocessor_config.json makes 48×48 images but config.json's "
                                                    "image_size is 32×32 and the network refuses other sizes"):
        check_input_size(lambda x: vit(pixel_values=x), spec, (32, 32), "preprocessor_config.json",
                         "config.json's image_size")
    dinov2, _ = pf._tiny("DINOv2")
    check_input_size(lambda x: dinov2(pixel_values=x), spec, (32, 32), "preprocessor_config.json", "config.json")
    timm_vit = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=1, num_classes=3).eval()
    with pytest.raises(UnsupportedModelError, match="makes 48×48 images but the network .* is 32×32"):
        check_input_size(timm_vit, spec, timm_vit.patch_embed.img_size, "pretrained_cfg", "the network (img_size)")


def test_a_fast_processor_spec_is_stored_with_the_model_and_used_by_tag(imgai_home, tmp_path, photos):
    """Through imgai's own path (add → convert → tag) a model whose Hub folder carries a …Fast
    processor tags with the scores of transformers' pipeline: preprocess.json keeps the torch resize."""
    import json as _json

    from transformers import ConvNextImageProcessorFast, pipeline

    from imgai import registry
    from imgai.classify.convert import convert
    from imgai.classify.tag import TagOptions, tag
    from imgai.sources import add_model
    from tests.factories import make_transformers_model

    folder = make_transformers_model(tmp_path / "resnet-fast", "resnet")
    ConvNextImageProcessorFast(size={"shortest_edge": 64}, crop_pct=0.875).save_pretrained(folder)
    model = convert(add_model(str(folder), name="fast").id)
    stored = _json.loads((imgai_home / "models" / model.id / "onnx" / "preprocess.json").read_text())
    assert stored["resize_backend"] == "torch" and stored["crop_rounding"] == "round"
    registry.set_enabled(model.id, True)
    classify = pipeline("image-classification", model=str(folder), device="cpu")
    for photo in photos.values():
        ours = {t.label: t.score for t in tag([photo], model_id=model.id, options=TagOptions(top_k=3))[0].tags}
        theirs = {r["label"]: r["score"] for r in classify(str(photo), top_k=3)}
        assert ours.keys() == theirs.keys() and max(theirs.values()) - min(theirs.values()) > 0.01
        assert max(abs(ours[k] - theirs[k]) for k in ours) <= TOLERANCE, photo.name
