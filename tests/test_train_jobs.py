"""Training jobs in real worker processes: queue order, cancel (queued and running), a killed
worker → Failed "interrupted" → Resume from the last epoch checkpoint, and the CLI."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.train_fixtures import TINY_RESNET, make_shapes, one_thread  # noqa: F401 (fixture)
from tests.waiting import wait_until

TINY = dict(batch_size=16, image_size=32, lr=3e-3)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_shapes(tmp_path / "shapes", per_class=12, size=32)


def _epoch_done(job_id: str, epoch: int) -> bool:
    from imgai import jobs

    return any((e.get("data") or {}).get("epoch", 0) >= epoch for e in jobs.events(job_id))


def test_queue_runs_in_order_and_a_queued_job_can_be_cancelled(imgai_home, shapes, monkeypatch):
    from imgai import jobs, registry, train

    monkeypatch.setenv("IMGAI_MAX_JOBS", "1")
    names = ["first", "second", "third"]
    for name in names:
        train.create_model(name, architecture="resnet18", model_args=TINY_RESNET)
    queued = [train.start(name, data=shapes, config=train.TrainConfig(epochs=1, **TINY)) for name in names]
    assert [j.state for j in queued[1:]] == ["queued", "queued"]     # one at a time
    assert train.view(queued[1]).epoch_ratio == "0/1"

    cancelled = train.cancel(queued[1].id)
    assert cancelled.state == jobs.CANCELLED
    assert registry.get("second").training == "Untrained"

    done = [jobs.wait(j.id, timeout=120) for j in queued]
    assert [j.state for j in done] == [jobs.SUCCEEDED, jobs.CANCELLED, jobs.SUCCEEDED], [j.error for j in done]
    assert done[0].ended_at <= done[2].started_at                      # first in, first out
    assert registry.get("first").training == registry.get("third").training == "Trained"
    assert registry.get("second").pytorch_path is None


def test_cancel_a_running_job(imgai_home, shapes):
    from imgai import jobs, registry, train

    train.create_model("long", architecture="resnet18", model_args=TINY_RESNET)
    job = train.start("long", data=shapes, config=train.TrainConfig(epochs=500, **TINY))
    wait_until(lambda: _epoch_done(job.id, 1), what="the first epoch")
    assert jobs.get(job.id).state == jobs.RUNNING
    assert train.view(job.id).epoch_ratio.endswith("/500")
    job = train.cancel(job.id)
    assert job.state == jobs.CANCELLED
    # the worker records "cancelled" first, then puts the model right (its on_abort)
    wait_until(lambda: registry.get("long").training == "Untrained", timeout=30, what="the model to settle")
    assert registry.get("long").pytorch_path is None
    assert not (imgai_home / "models" / "long" / "pytorch" / "runs" / "1").exists()
    # the per-epoch checkpoint stays, so even a cancelled run can be resumed
    assert (imgai_home / "models" / "long" / "checkpoints" / "run-1" / "checkpoint.pt").is_file()


def test_killed_worker_fails_interrupted_then_resumes_from_its_checkpoint(imgai_home, shapes):
    from imgai import jobs, registry, train

    train.create_model("crashy", architecture="resnet18", model_args=TINY_RESNET)
    epochs = 20
    job = train.start("crashy", data=shapes, config=train.TrainConfig(epochs=epochs, **TINY))
    wait_until(lambda: _epoch_done(job.id, 2), what="two epochs")
    _kill(jobs.get(job.id).pid)                                        # the worker dies, no clean-up
    dead = jobs.get(job.id)
    assert dead.state == jobs.FAILED and "interrupted" in dead.error
    assert registry.get("crashy").training == "Failed"
    checkpointed = len(train.curves(job.id))
    assert checkpointed >= 2

    resumed = train.resume(job.id)
    assert resumed.params["run"] == job.params["run"] and resumed.params["resumed_from"] == job.id
    resumed = jobs.wait(resumed.id, timeout=180)
    assert resumed.state == jobs.SUCCEEDED, resumed.error
    own_epochs = _own_epochs(resumed.id)
    assert own_epochs[0] > 1 and own_epochs[-1] == epochs             # it continued, it did not start over
    assert resumed.result["resumed_from_epoch"] == own_epochs[0] - 1
    assert [p["epoch"] for p in train.curves(resumed.id)] == list(range(1, epochs + 1))
    assert registry.get("crashy").training == "Trained"
    assert train.view(resumed).epoch_ratio == f"{epochs}/{epochs}"


def _kill(pid: int) -> None:
    """kill -9 the worker's process group, wait until it is gone, and let reads notice."""
    from imgai import jobs

    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not jobs._alive(pid, None), what=f"worker {pid} to die")
    jobs.recover()                                                     # what the app does on its next look


def _own_epochs(job_id: str) -> list[int]:
    from imgai import jobs

    return [e["data"]["epoch"] for e in jobs.events(job_id) if (e.get("data") or {}).get("kind") == "epoch"]


def _stopped(pid: int | None) -> bool:
    import psutil

    try:
        return bool(pid) and psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


# Each moment of an epoch's commit, as the worker's test hook names it (imgai.train.loop):
# the checkpoint's temp file written but not renamed, renamed but the epoch not yet reported,
# and reported. Whichever it is, the resumed run has every epoch exactly once.
MOMENTS = ("checkpoint-written", "checkpoint-renamed", "epoch-reported")


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_kill_at_any_moment_of_the_checkpoint_resumes_with_every_epoch_once(imgai_home, shapes, monkeypatch,
                                                                             moment):
    from imgai import jobs, train
    from imgai.train.loop import load_checkpoint
    from imgai.train.models import checkpoint_path

    epochs, at = 4, 2
    train.create_model("crashy", architecture="resnet18", model_args=TINY_RESNET)
    monkeypatch.setenv("IMGAI_TEST_STOP_AT", f"{moment}:{at}")
    job = train.start("crashy", data=shapes, config=train.TrainConfig(epochs=epochs, **TINY))
    pid = wait_until(lambda: _stopped(jobs.get(job.id).pid) and jobs.get(job.id).pid, timeout=120,
                     what=f"the worker to stop at {moment}:{at}")
    try:
        ckpt = checkpoint_path("crashy", job.params["run"])
        on_disk = load_checkpoint(ckpt)["epoch"]
        assert on_disk == (at - 1 if moment == "checkpoint-written" else at)
        assert ckpt.with_name(ckpt.name + ".tmp").is_file() == (moment == "checkpoint-written")
        assert _own_epochs(job.id) == list(range(1, at + (moment == "epoch-reported")))
    finally:
        _kill(pid)
    assert jobs.get(job.id).state == jobs.FAILED

    monkeypatch.delenv("IMGAI_TEST_STOP_AT")
    resumed = jobs.wait(train.resume(job.id).id, timeout=180)
    assert resumed.state == jobs.SUCCEEDED, resumed.error
    assert _own_epochs(resumed.id) == list(range(on_disk + 1, epochs + 1))   # what the checkpoint lacked, once
    assert resumed.result["resumed_from_epoch"] == on_disk
    curve = train.curves(resumed.id)
    assert [p["epoch"] for p in curve] == list(range(1, epochs + 1))
    assert curve == resumed.result["history"]                                # one history: the checkpoint's


def test_cli_create_start_wait_show(imgai_home, shapes, capsys):
    from imgai.cli import main

    assert main(["train", "architectures", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 15 and {r["architecture"] for r in rows} >= {
        "resnet18", "mobilenet_v3_small", "efficientnet_lite0", "convnext_atto", "vit_tiny", "fastvit_t8"}

    assert main(["train", "data", "add", "shapes", str(shapes), "--image-size", "32", "--flip"]) == 0
    assert "36 images in 3 classes" in capsys.readouterr().out
    assert main(["train", "create", "--architecture", "resnet18", "--name", "cli-model",
                 "--model-args", json.dumps(TINY_RESNET), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"] == "Untrained"

    code = main(["train", "start", "cli-model", "--data", "shapes", "--epochs", "2", "--batch-size", "16",
                 "--optimizer", "adam", "--lr", "0.003", "--wait", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    done = json.loads(captured.out)
    assert done["state"] == "succeeded" and done["epoch_ratio"] == "2/2"
    assert done["result"]["labels"] == ["circle", "square", "triangle"]

    assert main(["train", "show", done["job_id"]]) == 0
    shown = capsys.readouterr().out
    assert "confusion matrix" in shown and "per-class validation accuracy" in shown
    assert main(["train", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["job_id"] == done["job_id"]

    # bad settings stop before any job is queued, with the value named
    assert main(["train", "start", "cli-model", "--data", "shapes", "--lr", "-1"]) == 1
    assert "lr=-1.0" in capsys.readouterr().err
    assert main(["train", "start", "cli-model", "--data", "shapes", "--prefetch-factor", "2"]) == 1
    assert "num_workers > 0" in capsys.readouterr().err
    assert main(["train", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_the_fp16_loss_scaler_state_round_trips_through_the_checkpoint(tmp_path):
    """A resumed fp16 run must go on with the loss scale it had reached (not 65536 again): the
    checkpoint holds the GradScaler's state, and it reads back with weights_only=True."""
    import torch

    from imgai.train.feed import Amp
    from imgai.train.loop import _checkpoint_state, _write_checkpoint, load_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    for step in range(5):                               # scale grows once (after 3 steps), tracker at 2
        loss = model(torch.randn(8, 4)).square().mean()
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    reached = scaler.state_dict()
    assert reached["scale"] == 2048.0 and reached["_growth_tracker"] == 2

    _write_checkpoint(tmp_path / "checkpoint.pt", _checkpoint_state(model, optimizer, 1, [], scaler=reached))
    saved = load_checkpoint(tmp_path / "checkpoint.pt")              # torch.load(weights_only=True)
    resumed = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    resumed.load_state_dict(saved["scaler"])
    assert resumed.state_dict() == reached and resumed.get_scale() == 2048.0

    fp32 = Amp("cpu", "fp32")                           # no scaler: nothing saved, nothing to load
    assert fp32.state_dict() is None and "scaler" not in _checkpoint_state(model, optimizer, 1, [])
    fp32.load_state_dict(saved["scaler"])


def test_checkpoints_are_written_by_one_thread_that_starts_with_the_run(tmp_path, monkeypatch):
    """No thread starts during the epochs (a cancel landing inside a per-epoch Thread.start() left
    a thread close() could not join: the job failed instead of being cancelled); close() waits for
    each write, reported in order, and finish() lets the writer's thread go."""
    import threading

    import torch

    from imgai.train.loop import CheckpointWriter, EpochMetrics, load_checkpoint

    reported = []
    writer = CheckpointWriter(tmp_path / "last.pt", on_saved=reported.append)
    [thread] = [t for t in threading.enumerate() if t.name == "imgai-checkpoint" and t.is_alive()]
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda t: started.append(t.name))
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    epochs = [EpochMetrics(epoch=e, epochs=2, train_loss=1.0, train_accuracy=0.5, val_loss=None, val_accuracy=None,
                           samples_per_s=1.0, seconds=1.0, lr=0.1) for e in (1, 2)]
    for metrics in epochs:
        writer.save(metrics, model=model, optimizer=optimizer, history=[])
        writer.close()
        assert reported[-1] == metrics and load_checkpoint(tmp_path / "last.pt")["epoch"] == metrics.epoch
    writer.finish()
    thread.join(10)
    assert started == [] and reported == epochs and not thread.is_alive()
