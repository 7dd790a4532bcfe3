"""Tagging: safe decoding of awkward files, top-k/threshold, outputs, sidecars, exit codes."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from imgai.classify.preprocess import decode_image
from imgai.errors import UnreadableImageError
from tests.factories import LABELS, random_image


@pytest.fixture
def tagging_model(imgai_home, tiny_model_cache, tmp_path):
    """A converted, enabled, default tiny model."""
    from imgai.classify.convert import convert
    from imgai.sources import add_model

    folder = shutil.copytree(tiny_model_cache("timm-mobilenetv3"), tmp_path / "model")
    return convert(add_model(str(folder)).id)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), "red")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert decode_image(tmp_path / "rot.jpg").size == (20, 40)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P", "LA"])
def test_odd_modes_become_rgb(tmp_path, mode):
    path = tmp_path / f"img.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
    if mode == "I;16":
        Image.fromarray((np.arange(4800).reshape(60, 80) * 10).astype(np.uint16)).save(path)
    else:
        Image.open(random_image(tmp_path / "src.png")).convert(mode).save(path)
    out = decode_image(path)
    assert (out.mode, out.size) == ("RGB", (80, 60))


def test_sixteen_bit_keeps_its_range(tmp_path):
    arr = np.full((8, 8), 65535, np.uint16)
    Image.fromarray(arr).save(tmp_path / "white16.png")
    assert np.asarray(decode_image(tmp_path / "white16.png")).min() == 255


@pytest.mark.parametrize("content, reason", [(b"", "not an image"), (b"hello", "not an image"),
                                             (None, "truncated")])
def test_bad_files_get_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is None:
        random_image(tmp_path / "ok.jpg")
        path.write_bytes((tmp_path / "ok.jpg").read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(UnreadableImageError, match=reason):
        decode_image(path)


def test_only_an_unreadable_file_is_reported_as_a_bad_image(tmp_path):
    """decode_safe turns an unreadable file into a per-file reason, and nothing else: a failure inside
    preprocessing (here a spec broken after it was validated) is a bug and is raised as one."""
    from imgai.classify.preprocess import PreprocessSpec
    from imgai.classify.tag import Tagger

    spec = PreprocessSpec(resize={"height": 8, "width": 8}, crop=None)
    tagger = Tagger.decoder(spec)
    (tmp_path / "bad.jpg").write_bytes(b"hello")
    assert tagger.decode_safe(tmp_path / "bad.jpg") == (None, "not an image (or a format Pillow cannot read)")
    array, reason = tagger.decode_safe(tmp_path / "missing.jpg")
    assert array is None and reason.startswith("cannot read: No such file")
    good = random_image(tmp_path / "ok.png")
    assert tagger.decode_safe(good)[0].shape == (3, 8, 8)
    spec.resize = {"height": 0, "width": 8}             # broken after validation: Pillow refuses to resize
    with pytest.raises(ValueError) as raised:
        tagger.decode_safe(good)
    assert not isinstance(raised.value, UnreadableImageError)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    random_image(tmp_path / "big.png", size=(100, 100))
    with pytest.raises(UnreadableImageError, match="too many pixels"):
        decode_image(tmp_path / "big.png")


def test_bad_files_never_stop_the_run(tagging_model, tmp_path, cli):
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    good = [random_image(folder / "a.jpg", seed=1), random_image(folder / "nested" / "b.png", seed=2)]
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    code, out, err = cli("tag", folder, "--format", "json")
    results = {r["path"]: r for r in json.loads(out)}
    assert code == 1 and "empty.jpg" in err
    assert set(results) == {str(p) for p in good} | {str(folder / "empty.jpg")}
    assert results[str(folder / "empty.jpg")]["error"] and results[str(folder / "empty.jpg")]["tags"] == []
    assert all(results[str(p)]["error"] is None and results[str(p)]["tags"] for p in good)
    code, _, _ = cli("tag", *good)
    assert code == 0


def test_bad_values_exit_1_and_usage_errors_2(tagging_model, tmp_path, cli):
    code, _, err = cli("tag", tmp_path / "missing.jpg")
    assert code == 1 and "missing.jpg" in err
    code, _, err = cli("tag", random_image(tmp_path / "x.png"), "--top-k", "0")
    assert code == 1 and "top_k" in err
    assert cli("tag", "--nope")[0] == 2


def test_top_k_and_threshold(tagging_model, tmp_path, cli):
    img = random_image(tmp_path / "x.png")
    _, out, _ = cli("tag", img, "--format", "json", "--top-k", "3")
    tags = json.loads(out)[0]["tags"]
    assert len(tags) == 3 and abs(sum(t["score"] for t in tags) - 1) < 1e-4   # softmax over 3 labels
    cut = tags[1]["score"]
    _, out, _ = cli("tag", img, "--format", "json", "--top-k", "3", "--threshold", cut)
    assert [t["label"] for t in json.loads(out)[0]["tags"]] == [t["label"] for t in tags[:2]]


def test_csv_output_file(tagging_model, tmp_path, cli):
    images = [random_image(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    out_file = tmp_path / "tags.csv"
    code, stdout, _ = cli("tag", *images, "--format", "csv", "--output", out_file, "--top-k", "2")
    assert code == 0 and stdout == ""
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert len(rows) == 4 and {r["label"] for r in rows} <= set(LABELS)
    assert [r["rank"] for r in rows] == ["1", "2", "1", "2"]


def test_sidecars_are_written_and_never_overwritten_without_asking(tagging_model, tmp_path, cli):
    import xml.etree.ElementTree as ET

    img = random_image(tmp_path / "photo.jpg")
    code, _, _ = cli("tag", img, "--sidecar", "txt", "--top-k", "2")
    txt = tmp_path / "photo.txt"
    labels = [s.strip() for s in txt.read_text().split(",")]
    assert code == 0 and len(labels) == 2 and set(labels) <= set(LABELS)

    cli("tag", img, "--sidecar", "xmp", "--top-k", "3")
    root = ET.parse(tmp_path / "photo.xmp").getroot()
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dc": "http://purl.org/dc/elements/1.1/"}
    assert sorted(li.text for li in root.findall(".//dc:subject/rdf:Bag/rdf:li", ns)) == sorted(LABELS)

    txt.write_text("my own caption\n")
    code, _, err = cli("tag", img, "--sidecar", "txt")
    assert txt.read_text() == "my own caption\n" and "--overwrite" in err
    cli("tag", img, "--sidecar", "txt", "--overwrite")
    assert txt.read_text() != "my own caption\n"


def test_only_enabled_validated_onnx_models_tag(tagging_model, tmp_path, cli):
    img = random_image(tmp_path / "x.png")
    cli("models", "disable", tagging_model.id)
    code, _, err = cli("tag", img, "--model", tagging_model.id)
    assert code == 1 and "disabled" in err
    code, _, err = cli("tag", img)
    assert code == 1 and "no default model" in err


def test_results_come_back_in_input_order_with_many_batches(tagging_model, tmp_path):
    from imgai.classify.tag import TagOptions, tag

    images = [random_image(tmp_path / f"{i:02d}.png", seed=i) for i in range(11)]
    one = tag(images, options=TagOptions(batch_size=1, top_k=3))
    many = tag(images, options=TagOptions(batch_size=4, top_k=3, workers=3))
    assert [r.path for r in many] == [str(p) for p in images]
    for a, b in zip(one, many):
        assert [t.label for t in a.tags] == [t.label for t in b.tags]
        np.testing.assert_allclose([t.score for t in a.tags], [t.score for t in b.tags], atol=1e-5)


def test_a_loaded_model_is_shared_by_concurrent_calls_until_its_files_change(tagging_model, tmp_path, cli):
    import os
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from imgai.classify.tag import TagOptions, Tagger, tag

    images = [random_image(tmp_path / f"{i}.png", seed=i) for i in range(6)]
    alone = [[t.label for t in r.tags] for r in tag(images, options=TagOptions(top_k=2))]
    with ThreadPoolExecutor(6) as pool:      # six visitors at once: one session, the same answers
        taggers = list(pool.map(lambda _: Tagger.for_model(tagging_model.id), range(6)))
        together = list(pool.map(lambda p: [t.label for t in tag([p], options=TagOptions(top_k=2))[0].tags], images))
    assert all(t is taggers[0] for t in taggers) and together == alone

    cli("models", "disable", tagging_model.id)            # the registry still decides on every call
    with pytest.raises(Exception, match="disabled"):
        Tagger.for_model(tagging_model.id)
    cli("models", "enable", tagging_model.id)
    labels = Path(tagging_model.onnx_path).parent / "labels.json"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))   # files changed
    assert Tagger.for_model(tagging_model.id) is not taggers[0]


def test_cli_gaps_a_first_user_met(tagging_model, tmp_path, cli, monkeypatch):
    """issue 23 item 7: one-line errors, no silent empty run, a suggestion for a misspelled option,
    and a table with a header and the paths as given."""
    img = random_image(tmp_path / "x.png")
    code, out, err = cli("tag", img, "--output", tmp_path / "nonexistent" / "dir" / "out.csv")
    assert code == 1 and err.startswith("error: --output") and "does not exist" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image here")
    code, out, err = cli("tag", tmp_path / "empty")
    assert code == 1 and "no images in" in err and out == ""
    code, _, err = cli("tag", img, "--top_k", "3")
    assert code == 2 and "did you mean --top-k?" in err and "usage: imgai tag" in err
    monkeypatch.chdir(tmp_path)
    random_image(tmp_path / "a-longer-name.png", seed=3)
    code, out, _ = cli("tag", "x.png", "a-longer-name.png", "--top-k", "1")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["IMAGE", "TAGS"] and len(lines) == 3
    assert lines[1].startswith("x.png ") and lines[2].startswith("a-longer-name.png  ")
    assert lines[0].index("TAGS") == lines[1].index(lines[1].split()[1]) == len("a-longer-name.png  ")


def test_tagging_does_not_recheck_an_onnx_file_that_passed_until_it_changes(tagging_model):
    """The checker (onnx parse + check_model, most of a one-image `imgai tag`) runs when a model is
    converted; a tagger started on the same file skips it, and a changed file is checked again."""
    import os
    from pathlib import Path

    from imgai.classify.tag import Tagger
    from imgai.config import paths
    from imgai.errors import ValidationError

    log = paths().logs / "imgai.log"
    onnx_file = Path(tagging_model.onnx_path)

    before = log.read_text().count("with onnx.checker")
    assert before >= 1                                   # conversion checked it (in its staging folder)
    Tagger(onnx_file.parent)
    Tagger(onnx_file.parent)
    assert log.read_text().count("with onnx.checker") == before

    st = onnx_file.stat()                                # same bytes, rewritten: checked again
    os.utime(onnx_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    Tagger(onnx_file.parent)
    assert log.read_text().count(f"checked {onnx_file} with onnx.checker") == 1
    Tagger(onnx_file.parent)
    assert log.read_text().count("with onnx.checker") == before + 1

    onnx_file.write_bytes(b"\x08\x07not a graph" * 100)  # replaced by garbage: the check refuses it
    with pytest.raises(ValidationError, match="not a readable ONNX model"):
        Tagger(onnx_file.parent)


def test_the_tag_tabs_form_tags_uploads_and_a_folder_and_reports_progress(tagging_model, tmp_path):
    """imgai.presentation.tag.tag_form: what the Tag tab's one call does, in-process."""
    from imgai.presentation.tag import tag_form

    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "bad.jpg").write_bytes(b"not an image")
    uploads = [str(random_image(tmp_path / "up" / "a.jpg", seed=1)), str(tmp_path / "up" / "bad.jpg")]
    seen = []
    screen = tag_form(uploads, "", "", 2, 0.0, 0.35, 0.85, False, None,
                      on_progress=lambda done, total: seen.append((done, total)))
    assert screen.tagged == uploads and [i.name for i in screen.images] == ["a.jpg"]
    assert [row[0] for row in screen.rows] == ["a.jpg", "bad.jpg"] and screen.rows[1][1].startswith("could not be read")
    assert screen.summary.startswith(f"Tagged 1 of 2 images with {tagging_model.id}. 1 could not be read")
    assert len(screen.images[0].bars) == 2                        # top-k 2
    assert seen and seen[-1] == (2, 2)
    assert all(path.endswith((".csv", ".json")) for path in screen.downloads)
