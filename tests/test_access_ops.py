"""The policy where it is enforced: imgai's operations called as the local owner, an admin, two
signed-in visitors and an anonymous page, in a public app (IMGAI_PUBLIC=1). Owners, listing,
quotas, per-visitor files, and a disk that fills during a job."""

from __future__ import annotations

import sqlite3
import time

import pytest

from imgai import access, db, files, jobs, quotas, registry
from imgai.access import ADMIN, ANONYMOUS, VISITOR, Actor
from imgai.errors import ConfigError, JobError, PermissionDeniedError, QuotaExceededError, StateError
from tests.factories import random_image
from tests.train_fixtures import make_shapes, one_thread  # noqa: F401 (fixture)

ALICE = Actor(VISITOR, username="alice")
BOB = Actor(VISITOR, username="bob")
ADMIN_ACTOR = Actor(ADMIN, username="owner")
STRANGER = Actor(ANONYMOUS, session="s1")


@pytest.fixture
def public(imgai_home, monkeypatch):
    monkeypatch.setenv("IMGAI_PUBLIC", "1")
    monkeypatch.setenv("IMGAI_MIN_FREE_DISK", "0")
    return imgai_home


@pytest.fixture
def tiny_onnx_model(public, tiny_model_cache, tmp_path) -> str:
    """A shared, converted, enabled tiny model (the console converts it in-process)."""
    import shutil

    from imgai.classify.convert import convert
    from imgai.sources import add_model

    folder = shutil.copytree(tiny_model_cache("timm-mobilenetv3"), tmp_path / "model")
    return convert(add_model(str(folder)).id).id


@pytest.fixture
def models(public):
    """A shared model and one of alice's (registry rows; no files needed to own them)."""
    from imgai import train

    shared = train.create_model("shared-tagger", architecture="resnet18")            # the console: shared
    alices = train.create_model("alices-tagger", architecture="resnet18", actor=ALICE)
    return shared, alices


def test_what_visitors_make_is_theirs_and_listed_for_them_and_admins(models):
    shared, alices = models
    assert (shared.owner, alices.owner) == (None, "alice")
    ids = lambda actor: [m.id for m in registry.list_models(actor=actor)]
    assert ids(ALICE) == [shared.id, alices.id]
    assert ids(BOB) == ids(STRANGER) == [shared.id]
    assert ids(ADMIN_ACTOR) == ids(None) == [shared.id, alices.id]


@pytest.mark.parametrize("action", ["remove", "enable", "disable", "default", "convert", "validate", "push",
                                    "train", "int8"])
def test_another_visitors_model_is_refused_and_left_alone(models, action):
    from imgai import hub, train
    from imgai.classify.convert import submit_conversion
    from imgai.classify.quantize import submit_quantization
    from imgai.classify.validate import validate

    _, alices = models
    before = registry.get(alices.id)
    call = {"remove": lambda a: registry.remove(alices.id, actor=a),
            "enable": lambda a: registry.set_enabled(alices.id, True, actor=a),
            "disable": lambda a: registry.set_enabled(alices.id, False, actor=a),
            "default": lambda a: registry.set_default(alices.id, actor=a),
            "convert": lambda a: submit_conversion(alices.id, actor=a),
            "validate": lambda a: validate(alices.id, actor=a),
            "push": lambda a: hub.push_model(alices.id, "bob/stolen", token="x", actor=a),
            "train": lambda a: train.start(alices.id, data="nothing", actor=a),
            "int8": lambda a: submit_quantization(alices.id, actor=a)}[action]
    for stranger, message in ((BOB, "belongs to another user|only the Space's owner"),
                              (STRANGER, "sign in with Hugging Face|only the Space.s owner|this app offers no sign-in")):
        with pytest.raises(PermissionDeniedError, match=message):
            call(stranger)
    assert registry.get(alices.id) == before
    assert jobs.list_jobs() == []


def test_visitors_cannot_change_shared_models_but_admins_and_owners_can(models):
    shared, alices = models
    with pytest.raises(PermissionDeniedError, match=f"model '{shared.id}' is shared"):
        registry.remove(shared.id, actor=ALICE)
    registry.remove(alices.id, actor=ALICE)                     # her own
    registry.remove(shared.id, actor=ADMIN_ACTOR)               # the catalogue's manager
    assert registry.list_models() == []


def test_a_visitors_model_never_becomes_everyones_default(models):
    _, alices = models
    with pytest.raises(StateError, match="only a shared model can be the default"):
        registry.set_default(alices.id, actor=ADMIN_ACTOR)


def test_existing_rows_become_shared_when_the_owner_column_arrives(imgai_home):
    imgai_home.mkdir(parents=True)
    with sqlite3.connect(imgai_home / "registry.sqlite") as conn:      # a registry from before owners
        conn.execute("CREATE TABLE models (id TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, "
                     "architecture TEXT NOT NULL, library TEXT NOT NULL, type TEXT NOT NULL, conversion TEXT NOT NULL, "
                     "training TEXT, enabled INTEGER NOT NULL DEFAULT 0, is_default INTEGER NOT NULL DEFAULT 0, "
                     "validation TEXT, validated_at REAL, error TEXT, pytorch_path TEXT, onnx_path TEXT, job_id TEXT, "
                     "extra TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, updated_at REAL NOT NULL)")
        conn.execute("INSERT INTO models (id, name, source, architecture, library, type, conversion, created_at, "
                     "updated_at) VALUES ('old', 'old', 'x', 'resnet18', 'timm', 'PyTorch', 'NotConverted', 0, 0)")
    db._ready.clear()
    assert registry.get("old").owner is None
    assert [m.id for m in registry.list_models(actor=BOB)] == ["old"]


# -- jobs -----------------------------------------------------------------------------------

def _queue(owner, n=1):
    return [jobs.submit("convert", {"model_id": "x"}, subject="x", owner=owner, start=False) for _ in range(n)]


def test_a_visitor_queues_at_most_three_jobs_and_runs_one_at_a_time(public, monkeypatch):
    alice = _queue("alice", 3)
    with pytest.raises(QuotaExceededError, match=r"you already have 3 jobs queued.*the limit is 3 \(queued jobs per "
                                                 r"visitor; set by IMGAI_QUOTA_QUEUED_JOBS, default 3\)"):
        _queue("alice")
    bob, shared = _queue("bob")[0], _queue(None, 4)       # others are not held back by alice, nor shared work
    started = []
    monkeypatch.setattr(jobs, "_spawn", lambda job_id, kind: started.append(job_id))   # record, start nothing
    monkeypatch.setenv("IMGAI_MAX_JOBS", "10")
    jobs.dispatch()
    assert started == [alice[0].id, bob.id] + [j.id for j in shared]
    assert [jobs.get(j.id).state for j in alice] == [jobs.STARTING, jobs.QUEUED, jobs.QUEUED]
    monkeypatch.setenv("IMGAI_QUOTA_RUNNING_JOBS", "2")
    jobs.dispatch()
    assert started[-1] == alice[1].id


def test_another_visitors_job_cannot_be_seen_or_cancelled(public):
    job = _queue("alice")[0]
    with pytest.raises(JobError, match=f"no job '{job.id}'"):
        jobs.get(job.id, actor=BOB)
    assert jobs.list_jobs(actor=BOB) == [] and [j.id for j in jobs.list_jobs(actor=ALICE)] == [job.id]
    for stranger in (BOB, STRANGER):
        with pytest.raises(PermissionDeniedError):
            jobs.cancel(job.id, actor=stranger)
    assert jobs.get(job.id).state == jobs.QUEUED
    assert jobs.cancel(job.id, actor=ALICE).state == jobs.CANCELLED


# -- training -------------------------------------------------------------------------------

def test_training_quotas_and_data_pipelines(models, tmp_path, monkeypatch):
    from imgai import train

    _, alices = models
    with pytest.raises(PermissionDeniedError, match="read folders on the server"):
        train.add_pipeline("mine", make_shapes(tmp_path / "shapes", per_class=3), kind="folder", actor=ALICE)
    with pytest.raises(PermissionDeniedError, match="read folders on the server"):
        train.start(alices.id, data=str(tmp_path / "shapes"), actor=ALICE)
    shared = train.add_pipeline("shapes", tmp_path / "shapes")                  # the console's, shared
    monkeypatch.setenv("IMGAI_QUOTA_EPOCHS", "2")
    with pytest.raises(QuotaExceededError, match=r"3 epochs asked: the limit is 2 \(training epochs per job; "
                                                 r"set by IMGAI_QUOTA_EPOCHS"):
        train.start(alices.id, data=shared, config=train.TrainConfig(epochs=3), actor=ALICE)
    job = train.start(alices.id, data=shared, config=train.TrainConfig(epochs=2), actor=ALICE, dispatch=False)
    assert job.owner == "alice" and job.params["limits"] == {"wall_time_s": quotas.limit("train_seconds")}
    with pytest.raises(PermissionDeniedError, match="remove a data pipeline"):
        train.remove_pipeline("shapes", actor=ALICE)
    with pytest.raises(PermissionDeniedError):
        train.resume(job.id, actor=BOB)
    with pytest.raises(PermissionDeniedError):
        train.download(job.id, actor=BOB)
    assert [p.name for p in train.list_pipelines(actor=BOB)] == ["shapes"]


@pytest.mark.slow
def test_a_training_job_past_its_wall_time_fails_with_the_reason(models, tmp_path, monkeypatch, one_thread):
    from imgai import train
    from tests.train_fixtures import TINY_RESNET, run_here

    monkeypatch.setenv("IMGAI_QUOTA_TRAIN_SECONDS", "0")
    model = train.create_model("tiny", architecture="resnet18", model_args=TINY_RESNET, actor=ALICE)
    shapes = train.add_pipeline("shapes", make_shapes(tmp_path / "shapes", per_class=4, size=32), image_size=32)
    job = train.start(model.id, data=shapes, config=train.TrainConfig(epochs=2, batch_size=8, pretrained=False),
                      actor=ALICE, dispatch=False)
    done = run_here(job.id)
    assert done.state == jobs.FAILED
    assert done.error.startswith("training stopped after") and "IMGAI_QUOTA_TRAIN_SECONDS" in done.error
    assert registry.get(model.id).training != "Training"


# -- tagging and per-visitor files ----------------------------------------------------------

def test_tag_calls_are_limited_and_results_are_the_visitors_own(public, tmp_path, monkeypatch, tiny_onnx_model):
    from imgai.classify.report import tag_to_files

    images = [random_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    monkeypatch.setenv("IMGAI_QUOTA_TAG_FILES", "2")
    with pytest.raises(QuotaExceededError, match="3 images sent in one call.*IMGAI_QUOTA_TAG_FILES"):
        tag_to_files(images, model_id=tiny_onnx_model, actor=STRANGER)
    monkeypatch.setenv("IMGAI_QUOTA_TAG_BYTES", "10")
    with pytest.raises(QuotaExceededError, match="of images sent in one call.*IMGAI_QUOTA_TAG_BYTES"):
        tag_to_files(images[:2], model_id=tiny_onnx_model, actor=STRANGER)
    monkeypatch.delenv("IMGAI_QUOTA_TAG_BYTES")
    with pytest.raises(PermissionDeniedError, match="read folders on the server"):
        tag_to_files([], folders=[str(tmp_path)], model_id=tiny_onnx_model, actor=STRANGER)

    report = tag_to_files(images[:2], model_id=tiny_onnx_model, actor=STRANGER)
    assert not report.failed
    mine = files.visitor_folder(STRANGER.owner)
    assert report.csv_path.parent.parent == mine and len(report.csv_path.parent.name) >= 20   # tags-<128 bits>
    assert files.check_readable(STRANGER, report.csv_path) == report.csv_path.resolve()
    other = Actor(ANONYMOUS, session="s2")
    assert files.visitor_folder(other.owner) != mine
    for guess in (report.csv_path, mine / ".." / ".key", mine / "../../registry.sqlite"):
        with pytest.raises(PermissionDeniedError, match="not one of your result files"):
            files.check_readable(other, guess)

    old = time.time() - files.ttl_s() - 60
    import os

    os.utime(report.csv_path.parent, (old, old))
    assert files.clean_expired() == 1 and not report.csv_path.exists()


def test_another_visitors_model_cannot_tag(public, tiny_onnx_model):
    from imgai.classify.tag import tag

    with db.transaction() as conn:
        conn.execute("UPDATE models SET owner = 'alice' WHERE id = ?", (tiny_onnx_model,))
    with pytest.raises(PermissionDeniedError, match="belongs to another user"):
        tag([], model_id=tiny_onnx_model, actor=BOB)


# -- the disk fills while a job runs --------------------------------------------------------

def test_a_disk_that_fills_during_a_conversion_fails_it_cleanly(public, tiny_model_cache, tiny_onnx_model,
                                                               monkeypatch, photos):
    """Accepted while there was room; by the time the ONNX file is written the free-disk floor is
    crossed (the floor is raised between queueing and running, as if the disk had filled): the job
    ends Failed with the reason, nothing lands in the model's folder, and tagging goes on."""
    from imgai.classify.convert import submit_conversion
    from imgai.classify.tag import tag
    from imgai.config import paths
    from imgai.sources import add_model

    model = add_model(str(tiny_model_cache("timm-resnet")), name="to convert")
    job = submit_conversion(model.id, actor=ADMIN_ACTOR, dispatch=False)
    monkeypatch.setenv("IMGAI_MIN_FREE_DISK", "1000TB")
    jobs.dispatch()
    done = jobs.wait(job.id, timeout=300)
    assert done.state == jobs.FAILED
    assert "not enough free disk for the ONNX model" in done.error and "IMGAI_MIN_FREE_DISK" in done.error
    after = registry.get(model.id)
    assert (after.type, after.conversion, after.onnx_path) == ("PyTorch", "Failed", None)
    assert not (paths().model_dir(model.id) / "onnx").exists()
    assert not [p for p in paths().tmp.iterdir() if p.name.startswith(f"convert-{model.id}")]
    assert tag([photos["coffee"]], model_id=tiny_onnx_model, actor=STRANGER)[0].error is None
    with pytest.raises(QuotaExceededError, match="not enough free disk for converting"):
        submit_conversion(model.id, actor=ADMIN_ACTOR)        # and new work is refused up front


def test_a_visitor_past_their_disk_quota_is_refused(models, monkeypatch):
    from imgai.classify.convert import submit_conversion

    _, alices = models
    monkeypatch.setenv("IMGAI_QUOTA_DISK", "0")
    files.new_folder(ALICE, "tags-").joinpath("results.csv").write_text("x" * 100)
    with pytest.raises(QuotaExceededError, match=r"you already use 100 B.*IMGAI_QUOTA_DISK"):
        submit_conversion(alices.id, actor=ALICE)
    monkeypatch.setenv("IMGAI_QUOTA_DISK", "nonsense")
    with pytest.raises(ConfigError, match="IMGAI_QUOTA_DISK='nonsense' is not a valid disk per visitor limit"):
        quotas.limit("visitor_disk")


# -- persistence and restarts ---------------------------------------------------------------

def test_on_a_space_with_persistent_storage_the_data_lives_in_it(tmp_path, monkeypatch):
    from imgai import config

    monkeypatch.delenv("IMGAI_HOME", raising=False)
    monkeypatch.setattr(config, "PERSISTENT_STORAGE", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "owner/imgai")
    assert config.paths().home == (tmp_path / "imgai_data").resolve()        # no storage bought
    (tmp_path / "data").mkdir()
    assert config.paths().home == tmp_path / "data" / "imgai"
    monkeypatch.delenv("SYSTEM")                                               # not a Space: stays local
    assert config.paths().home == (tmp_path / "imgai_data").resolve()


def test_a_visitors_job_cut_by_a_restart_is_theirs_failed_interrupted_and_resumable(models, tmp_path):
    from imgai import train

    _, alices = models
    shapes = train.add_pipeline("shapes", make_shapes(tmp_path / "shapes", per_class=3, size=32))
    job = train.start(alices.id, data=shapes, config=train.TrainConfig(epochs=1, batch_size=8), actor=ALICE,
                      dispatch=False)
    with db.transaction() as conn:     # it was running in a worker the restart took away
        conn.execute("UPDATE jobs SET state = 'running', pid = 2147483646, pid_started = 1 WHERE id = ?", (job.id,))
    jobs.recover()
    cut = jobs.get(job.id, actor=ALICE)
    assert (cut.state, cut.owner) == (jobs.FAILED, "alice") and cut.error.startswith("interrupted")
    assert [j.id for j in train.list_training(actor=ALICE)] == [job.id]
    assert train.list_training(actor=BOB) == []
    with pytest.raises(PermissionDeniedError):
        train.resume(job.id, actor=BOB)
    again = train.resume(job.id, actor=ALICE, dispatch=False)
    assert (again.state, again.owner, again.params["resumed_from"]) == (jobs.QUEUED, "alice", job.id)


def test_uploads_and_results_leave_the_servers_cache_after_the_ttl(tmp_path, tiny_onnx_model):
    """A Space keeps no stranger's photo forever: gradio's cache (uploads, copies of results) is
    emptied on imgai's files TTL, as the result folders are."""
    from gradio_client import Client, handle_file

    from imgai.config import paths
    from tests.conftest import AppServer
    from tests.waiting import wait_until

    server = AppServer(paths().home, env={"IMGAI_PUBLIC": "1", "IMGAI_FILES_TTL": "6",
                                          "GRADIO_TEMP_DIR": str(tmp_path / "cache")})
    try:
        client = Client(server.url, verbose=False, download_files=False)
        photo = random_image(tmp_path / "photo.png", seed=3)
        summary, *_ = client.predict([handle_file(str(photo))], "", tiny_onnx_model, 3, 0.0, api_name="/tag")
        assert "Tagged 1 of 1 images" in summary
        cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.stat().st_size]
        assert {"photo.png", "results.csv", "results.json"} <= {p.name for p in cached}, cached   # fresh: kept
        wait_until(lambda: not any(p.exists() for p in cached), 60, "gradio's cache to be emptied after the TTL")
    finally:
        server.stop()
