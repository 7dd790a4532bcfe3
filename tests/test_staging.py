"""imgai.staging: the one way a folder is put in place (models added, converted, trained, unpacked,
diffusion outputs), and a file (cards, sidecars, settings, archives). A reader sees the old one or
the new one; a failure leaves the old one."""

import pytest

from imgai.errors import StateError
from imgai.staging import move_into_place, staged_file, staging_folder, write_text


def _folder(path, text):
    path.mkdir(parents=True)
    (path / "file.txt").write_text(text)
    return path


def test_a_new_folder_replaces_the_old_one_and_nothing_is_left_over(tmp_path):
    target = _folder(tmp_path / "out" / "model", "old")
    with staging_folder(tmp_path / "out", prefix=".stage-") as staging:
        (staging / "file.txt").write_text("new")
        assert move_into_place(staging, target, replace=True) == target
    assert (target / "file.txt").read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model"]      # old and staging gone


def test_a_failure_while_building_leaves_the_old_folder_and_removes_the_staging(tmp_path):
    target = _folder(tmp_path / "model", "old")
    with pytest.raises(KeyboardInterrupt):           # Ctrl-C, or a cancelled job's JobCancelled
        with staging_folder(tmp_path, prefix=".stage-") as staging:
            (staging / "file.txt").write_text("half")
            raise KeyboardInterrupt
    assert (target / "file.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failed_swap_renames_the_old_folder_back(tmp_path):
    target = _folder(tmp_path / "model", "old")
    gone = tmp_path / "staging-that-was-removed"        # the new folder cannot be renamed in
    with pytest.raises(FileNotFoundError):
        move_into_place(gone, target, replace=True)
    assert (target / "file.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]      # nothing left aside


def test_an_existing_folder_is_refused_unless_replacing(tmp_path):
    target = tmp_path / "runs" / "1"
    target.mkdir(parents=True)                          # even empty: os.rename would silently replace it
    staging = _folder(tmp_path / "staging", "new")
    with pytest.raises(StateError, match="already exists"):
        move_into_place(staging, target)
    assert list(target.iterdir()) == [] and (staging / "file.txt").is_file()


def test_a_file_is_written_beside_its_target_then_renamed_and_a_failure_keeps_the_old_one(tmp_path):
    target = tmp_path / "sub" / "card.md"
    assert write_text(target, "old ✓") == target and target.read_text(encoding="utf-8") == "old ✓"
    with pytest.raises(KeyboardInterrupt):
        with staged_file(target) as tmp:
            assert tmp.parent == target.parent and tmp.name.startswith(".card.md.") and tmp.name.endswith(".tmp")
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "old ✓" and [p.name for p in target.parent.iterdir()] == ["card.md"]
    with staged_file(target) as first, staged_file(target) as second:      # two writers: a name each
        assert first != second
        first.write_text("one")
        second.write_text("two")
    assert target.read_text() == "one" and [p.name for p in target.parent.iterdir()] == ["card.md"]
