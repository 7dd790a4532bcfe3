"""The library index and incremental tagging: unchanged / new / changed / moved / missing files,
unreadable files recorded and kept, a run killed with SIGKILL continued by the same command, two
runs at once, a folder that disappears mid-run, and a damaged index that is never reset silently."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.factories import random_image
from tests.library_fixtures import index_counts, photo_folder, wd_default  # noqa: F401 (fixture)


def _summary(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("library: "))


def test_second_run_skips_unchanged_and_sees_new_changed_moved_missing(wd_default, imgai_home, tmp_path, cli):
    folder = tmp_path / "photos"
    files = photo_folder(folder, 8)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    code, out, err = cli("tag", folder, "--format", "json")
    assert code == 1 and _summary(err) == "library: 0 unchanged, 9 new"
    first = {r["path"]: r for r in json.loads(out)}
    assert len(first) == 9 and "not an image" in first[str(folder / "broken.jpg")]["error"]

    code, out, err = cli("tag", folder, "--format", "json")
    assert _summary(err).startswith("library: 8 unchanged, 1 unreadable")
    again = {r["path"]: r for r in json.loads(out)}
    assert again == first          # unchanged files come back from the index, cut the same way
    assert cli("library", "errors", "--json")[1].count("broken.jpg") == 1

    random_image(files[0], seed=100)                     # changed content
    os.rename(files[1], folder / "renamed.jpg")          # moved: same bytes
    files[2].unlink()                                    # missing
    random_image(folder / "new.jpg", seed=200)           # new
    code, out, err = cli("tag", folder, "--format", "json")
    assert _summary(err) == ("library: 5 unchanged, 1 new, 1 changed, 1 moved, 1 missing, "
                             "1 unreadable (unchanged since; `imgai library errors`)")
    counts = index_counts(imgai_home)
    assert counts["images"] == counts["paths"] == 10      # 9 + new; the renamed row moved, not copied
    status = json.loads(cli("library", "status", "--json")[1])
    assert status["images"] == {"ok": 8, "error": 1, "missing": 1}

    code, _, err = cli("tag", folder, "--force", "--format", "json")
    assert "9 forced" in _summary(err)
    assert index_counts(imgai_home)["images"] == 10


def test_thresholds_of_the_output_are_a_query_of_the_index(wd_default, tmp_path, cli):
    folder = tmp_path / "photos"
    photo_folder(folder, 3)
    _, fresh, _ = cli("tag", folder, "--format", "json", "--general-threshold", "0.6", "--underscores-to-spaces")
    _, stored, err = cli("tag", folder, "--format", "json", "--general-threshold", "0.6", "--underscores-to-spaces")
    assert "3 unchanged" in err and json.loads(stored) == json.loads(fresh)
    labels = {t["label"] for r in json.loads(stored) for t in r["tags"]}
    assert "long hair" in labels and all(t["score"] >= 0.6 for r in json.loads(stored) for t in r["tags"]
                                         if t["category"] == "general")


def _tag_process(folder: Path, home: Path, *extra) -> subprocess.Popen:
    env = {**os.environ, "IMGAI_HOME": str(home), "IMGAI_NO_DEMO": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "imgai", "tag", str(folder), "--format", "json",
                             "--batch-size", "1", *extra], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_run_killed_with_sigkill_is_continued_by_the_same_command(wd_default, imgai_home, tmp_path, cli):
    folder = tmp_path / "photos"
    n = 160
    photo_folder(folder, n, size=(320, 240))
    proc = _tag_process(folder, imgai_home)
    done = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            done = index_counts(imgai_home)["tagged"]
        except sqlite3.Error:
            done = 0
        if done:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    kept = index_counts(imgai_home)
    assert 0 < kept["tagged"] < n, kept              # killed mid-run, whole batches kept
    assert kept["images"] == kept["tagged"] == kept["scored_images"]

    rerun = _tag_process(folder, imgai_home)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"library: {kept['tagged']} unchanged, {n - kept['tagged']} new" in err
    assert len(json.loads(out)) == n
    final = index_counts(imgai_home)
    assert final["images"] == final["paths"] == final["tagged"] == final["scored_images"] == n
    status = json.loads(cli("library", "status", "--json")[1])
    states = [r["state"] for r in status["runs"]]
    assert states == ["Done", "Failed"]              # the killed run is not left Running
    assert "interrupted" in status["runs"][1]["error"]


def test_two_runs_on_one_folder_at_once_both_finish_without_duplicates(wd_default, imgai_home, tmp_path):
    folder = tmp_path / "photos"
    photo_folder(folder, 40)
    procs = [_tag_process(folder, imgai_home) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert len(json.loads(out)) == 40
    counts = index_counts(imgai_home)
    assert counts["images"] == counts["paths"] == counts["tagged"] == counts["scored_images"] == 40
    conn = sqlite3.connect(imgai_home / "library.sqlite")
    per_image = conn.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM scores GROUP BY image_id)").fetchone()[0]
    assert per_image <= 12                            # never more scores than the model has labels


def test_a_folder_that_disappears_mid_run_ends_failed_with_what_was_done_kept(wd_default, imgai_home, tmp_path):
    from imgai.classify.tag import TagOptions
    from imgai.library.index import LibraryError
    from imgai.library.run import tag_into_library

    folder = tmp_path / "drive" / "photos"
    photo_folder(folder, 60)
    seen = []

    def unplug(result):
        seen.append(result)
        if len(seen) == 2:
            os.rename(tmp_path / "drive", tmp_path / "unplugged")

    with pytest.raises(LibraryError, match="disappeared during the run"):
        tag_into_library([folder], options=TagOptions(batch_size=2, workers=1), on_result=unplug)
    counts = index_counts(imgai_home)
    assert 2 <= counts["tagged"] < 60 and counts["images"] == counts["tagged"]   # nothing unreadable recorded
    conn = sqlite3.connect(imgai_home / "library.sqlite")
    state, error = conn.execute("SELECT state, error FROM runs").fetchone()
    assert state == "Failed" and "disappeared" in error


def test_a_damaged_index_is_refused_with_the_rebuild_and_decisions_survive(wd_default, imgai_home, tmp_path, cli):
    folder = tmp_path / "photos"
    photo_folder(folder, 2)
    cli("tag", folder)
    image = str(folder / "img0000.jpg")
    assert cli("library", "decide", image, "cat", "add")[0] == 0
    code, exported, _ = cli("library", "decide", "--export")
    (tmp_path / "decisions.json").write_text(exported)

    index = imgai_home / "library.sqlite"
    index.write_bytes(b"garbage, not SQLite" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    code, _, err = cli("library", "status")
    assert code == 1 and "damaged" in err and "imgai library rebuild" in err
    assert index.read_bytes().startswith(b"garbage")            # never reset silently
    code, _, err = cli("tag", folder)
    assert code == 1 and "imgai library rebuild" in err

    code, out, _ = cli("library", "rebuild", "--decisions", tmp_path / "decisions.json", "--json")
    outcome = json.loads(out)
    assert code == 0 and outcome["decisions"] == 1 and Path(outcome["moved_to"]).read_bytes().startswith(b"garbage")
    code, _, err = cli("tag", folder)
    assert code == 0 and _summary(err) == "library: 0 unchanged, 1 new, 1 untagged"   # the decision's image waited
    hits = json.loads(cli("library", "search", "cat", "--json")[1])
    assert [h["path"] for h in hits["hits"]] == [image]


def test_the_library_is_for_the_local_user_and_admins_only(imgai_home):
    from imgai.access import ADMIN, ANONYMOUS, VISITOR, Actor
    from imgai.errors import PermissionDeniedError
    from imgai.library.search import search, status

    assert status(actor=Actor(ADMIN, username="owner"))["images"] == {}
    for stranger in (Actor(VISITOR, username="someone"), Actor(ANONYMOUS, session="abc")):
        with pytest.raises(PermissionDeniedError, match="photo library"):
            search("cat", actor=stranger)


def test_files_are_hashed_from_the_bytes_read_for_decoding_not_read_again(wd_default, imgai_home, tmp_path,
                                                                         monkeypatch):
    """A first run and a --force run hash each file from the bytes the decoder reads (the plan
    reads nothing); only a new path whose size the index knows (a possible move) is hashed first."""
    from imgai.library import plan
    from imgai.library.run import tag_into_library

    folder = tmp_path / "photos"
    files = photo_folder(folder, 6)
    real, reads = plan.content_hash, []
    monkeypatch.setattr(plan, "content_hash", lambda path: reads.append(str(path)) or real(path))
    tag_into_library([folder])
    tag_into_library([folder], force=True)
    assert reads == []
    stored = dict(sqlite3.connect(imgai_home / "library.sqlite").execute("SELECT path, hash FROM images"))
    assert stored == {str(f): real(f) for f in files}          # the same hash as reading the file

    os.rename(files[0], folder / "renamed.jpg")
    report = tag_into_library([folder])
    assert report.counts["moved"] == 1 and reads == [str(folder / "renamed.jpg")]


def test_tagging_again_writes_what_changed_and_drops_scores_no_longer_given(wd_default, imgai_home, tmp_path):
    from imgai.library.run import tag_into_library

    folder = tmp_path / "photos"
    photo_folder(folder, 3)
    tag_into_library([folder])
    conn = sqlite3.connect(imgai_home / "library.sqlite", isolation_level=None)
    before = conn.execute("SELECT image_id, tag_id, score FROM scores ORDER BY 1, 2").fetchall()
    image_id, tag_id, _ = before[0]
    fingerprint = conn.execute("SELECT fingerprint FROM tags WHERE id=?", (tag_id,)).fetchone()[0]
    conn.execute("UPDATE scores SET score=1 WHERE image_id=? AND tag_id=?", (image_id, tag_id))     # changed
    gone = conn.execute("INSERT INTO tags(fingerprint, label) VALUES (?, 'gone') RETURNING id", (fingerprint,)).fetchone()[0]
    other = conn.execute("INSERT INTO tags(fingerprint, label) VALUES ('another-model', 'cat') RETURNING id").fetchone()[0]
    conn.executemany("INSERT INTO scores VALUES (?, ?, 500000)", [(image_id, gone), (image_id, other)])
    tag_into_library([folder], force=True)
    after = conn.execute("SELECT image_id, tag_id, score FROM scores ORDER BY 1, 2").fetchall()
    assert after == sorted(before + [(image_id, other, 500000)])     # another model's score is not this run's


def test_a_failed_index_write_ends_the_run_failed_and_is_raised(wd_default, imgai_home, tmp_path, monkeypatch):
    from imgai.library import writer
    from imgai.library.run import tag_into_library

    folder = tmp_path / "photos"
    photo_folder(folder, 5)

    def disk_error(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer, "write_batch", disk_error)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        tag_into_library([folder])
    conn = sqlite3.connect(imgai_home / "library.sqlite")
    assert conn.execute("SELECT state, error FROM runs").fetchall() == [("Failed", "disk I/O error")]


def test_a_folder_without_images_says_so_and_records_no_run(wd_default, imgai_home, tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    code, out, err = cli("tag", empty)
    assert code == 1 and "no images in" in err and "library:" not in err and out == ""
    assert json.loads(cli("library", "status", "--json")[1])["runs"] == []

    photos = tmp_path / "photos"
    photo_folder(photos, 2)
    assert cli("tag", photos)[0] == 0
    for f in photos.iterdir():
        f.unlink()
    code, _, err = cli("tag", photos)                 # emptied since: its images are marked missing
    assert code == 1 and "no images in" in err
    status = json.loads(cli("library", "status", "--json")[1])
    assert status["images"] == {"missing": 2} and [r["state"] for r in status["runs"]] == ["Done"]
