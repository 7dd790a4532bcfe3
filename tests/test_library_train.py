"""Back into training: data pipelines from the library (kept or reviewed tags, rare tags dropped)
and from a folder of `.txt` captions; single-label when each image has one tag, multi-label
otherwise, and a multi-label pipeline trains with the bce loss without being told."""

from __future__ import annotations

import json

from tests.library_fixtures import photo_folder, wd_default  # noqa: F401 (fixture)


def test_reviewed_tags_make_a_single_label_pipeline(wd_default, tmp_path, cli):
    folder = tmp_path / "photos"
    files = photo_folder(folder, 6)
    cli("tag", folder)
    args = []
    for i, f in enumerate(files):
        args += [f, "cat" if i < 3 else "dog", "add"]
    args += [files[0], "rare", "add"]
    assert cli("library", "decide", *args)[0] == 0
    code, out, err = cli("train", "data", "add", "pets", "--from-library", folder, "--reviewed-only",
                         "--min-images-per-tag", "2", "--json")
    assert code == 0, err
    pipeline = json.loads(out)
    assert pipeline["multi_label"] is False and "single-label" in err
    assert pipeline["check"]["counts"] == {"cat": 3, "dog": 3}           # 'rare' (1 image) dropped


def test_library_tags_make_a_multi_label_pipeline_that_trains_with_bce(wd_default, tmp_path, cli):
    from imgai import train
    from imgai.train.data import scan

    folder = tmp_path / "photos"
    photo_folder(folder, 6)
    cli("tag", folder)
    code, out, err = cli("train", "data", "add", "wd-tags", "--from-library", folder, "--json")
    assert code == 0, err
    pipeline = json.loads(out)
    assert pipeline["multi_label"] is True and "multi-label (bce)" in err
    kept = json.loads(cli("library", "export", "json", "--folder", folder)[1])
    expected: dict = {}
    for row in kept:
        if row["state"] == "accepted" and row["category"] != "rating":
            expected.setdefault(row["label"], set()).add(row["path"])
    samples = scan(pipeline["root"], multi_label=True)
    assert len(samples.items) == 6 and sorted(samples.labels) == sorted(expected)
    assert sum(len(t) for _, t in samples.items) == sum(len(v) for v in expected.values())

    model = train.create_model("from-library", architecture="resnet18")
    job = train.start(model.id, data="wd-tags", config=train.TrainConfig(epochs=1, batch_size=4), dispatch=False)
    assert job.params["config"]["loss"] == "bce"


def test_a_folder_of_caption_sidecars_makes_a_pipeline(imgai_home, tmp_path, cli):
    folder = tmp_path / "captioned"
    files = photo_folder(folder, 5)
    captions = ["1girl, smile", "1girl, solo", "solo, smile", "1girl, unique_tag", None]
    for f, c in zip(files, captions):
        if c:
            f.with_suffix(".txt").write_text(c + "\n")
    code, out, err = cli("train", "data", "add", "captions", "--from-captions", folder, "--min-images-per-tag", "2",
                         "--json")
    assert code == 0, err
    pipeline = json.loads(out)
    assert pipeline["multi_label"] is True
    assert pipeline["check"]["counts"] == {"1girl": 3, "smile": 2, "solo": 2}
    code, _, err = cli("train", "data", "add", "none", "--from-captions", tmp_path / "nowhere")
    assert code == 1 and "not a folder" in err
