"""The registry's state machine, its single default, and safety under concurrent use."""

import threading

import pytest

from imgai import registry
from imgai.errors import StateError, UnknownModelError


def _model(name="m"):
    return registry.create(name=name, source=f"local:{name}", architecture="ResNetForImageClassification",
                           library="transformers")


def test_new_model_is_pytorch_not_converted(imgai_home):
    m = _model()
    assert (m.type, m.conversion, m.enabled, m.default) == ("PyTorch", "NotConverted", False, False)
    assert registry.get(m.id).id == m.id == "m"


def test_ids_are_unique_slugs(imgai_home):
    assert [_model("My Model!").id, _model("My Model!").id] == ["my-model", "my-model-2"]


def test_conversion_state_machine(imgai_home, tmp_path):
    m = _model()
    registry.start_conversion(m.id, "job1")
    assert registry.get(m.id).conversion == "Converting"
    with pytest.raises(StateError, match="cannot convert"):
        registry.start_conversion(m.id)          # already converting
    failed = registry.fail_conversion(m.id, "boom")
    assert (failed.type, failed.conversion, failed.error) == ("PyTorch", "Failed", "boom")
    registry.start_conversion(m.id)              # a failed model can be converted again
    done = registry.finish_conversion(m.id, tmp_path / "model.onnx", validation={"passed": True},
                                      extra={"opset": 18}, enable=True, make_default=True)
    # one write: a reader never sees it Converted but not yet validated, enabled or the default
    assert (done.type, done.conversion, done.error) == ("ONNX", "Converted", None)
    assert (done.valid, done.enabled, done.default, done.extra["opset"]) == (True, True, True, 18)
    with pytest.raises(StateError):
        registry.start_conversion(m.id)          # converted: nothing to convert


def test_status_changes_only_through_state_functions(imgai_home):
    m = _model()
    with pytest.raises(StateError, match="state functions"):
        registry.update(m.id, conversion="Converted")


def test_enable_requires_validated_onnx_and_one_default(imgai_home, tmp_path):
    a, b = _model("a"), _model("b")
    with pytest.raises(StateError, match="only a validated ONNX model"):
        registry.set_enabled(a.id, True)
    for m in (a, b):
        registry.start_conversion(m.id)
        registry.finish_conversion(m.id, tmp_path / "model.onnx", validation={"passed": True})
        assert not registry.get(m.id).enabled      # enabled only when asked
        registry.set_enabled(m.id, True)
    registry.set_default(a.id)
    registry.set_default(b.id)
    assert [m.id for m in registry.list_models() if m.default] == ["b"]
    registry.set_enabled(b.id, False)            # disabling drops the default too
    assert registry.default_model() is None
    registry.record_validation(a.id, {"passed": False, "problems": ["x"]})
    assert not registry.get(a.id).enabled and registry.get(a.id).error == "validation failed: x"


def test_unknown_model_names_known_ones(imgai_home):
    _model("known")
    with pytest.raises(UnknownModelError, match="known"):
        registry.get("nope")


def test_the_demo_model_not_yet_prepared_says_how_to_prepare_it(imgai_home):
    """A fresh data folder used from the CLI alone has no demo yet (the app prepares it on its first
    start): asking for it by its id says how to prepare it, in the CLI's words and in the app's."""
    from imgai.demo import MODEL_ID
    from imgai.words import CLI, UI, render

    with pytest.raises(UnknownModelError) as refused:
        registry.get(MODEL_ID)
    assert render(refused.value.args[0], CLI).endswith(
        "the demo model is prepared on the app's first start; `imgai models demo` prepares it now")
    assert "**Restore the demo model** in the **Convert** tab prepares it now" in render(refused.value.args[0], UI)
    with pytest.raises(UnknownModelError) as other:
        registry.get("nope")
    assert render(other.value.args[0], CLI).endswith("see `imgai models list`")


def test_remove_deletes_files_but_not_while_converting(imgai_home):
    from imgai.config import paths

    m = _model()
    (paths().model_dir(m.id) / "pytorch").mkdir(parents=True)
    registry.start_conversion(m.id, "j")
    with pytest.raises(StateError, match="while it is converting"):
        registry.remove(m.id)
    registry.fail_conversion(m.id, "x")
    registry.remove(m.id)
    assert not paths().model_dir(m.id).exists() and registry.list_models() == []


def test_concurrent_readers_and_writers(imgai_home):
    """WAL: readers never see a half-written registry while writers create models."""
    errors = []

    def writer(n):
        try:
            for i in range(15):
                _model(f"w{n}-{i}")
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    def reader():
        try:
            for _ in range(40):
                for m in registry.list_models():
                    assert m.type == "PyTorch" and m.conversion == "NotConverted"
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)] + [threading.Thread(target=reader)
                                                                               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(registry.list_models()) == 45


def test_what_a_model_came_from_may_be_gone(imgai_home, tmp_path):
    """An INT8 copy whose original was removed describes itself on its card; a trained model whose data
    pipeline was removed (or damaged) has no calibration folder; neither is an error."""
    from imgai.classify.calibration import training_folder
    from imgai.hub.publish import _original

    copy = registry.create(name="int8 copy", source="x", architecture="resnet", library="timm",
                           extra={"quantized_from": "removed-since"})
    assert _original(copy) == copy
    trained = registry.create(name="trained", source="x", architecture="resnet", library="timm",
                              extra={"current_run": 1, "runs": {"1": {"data": "gone"}}})
    assert training_folder(trained) is None
    from imgai.train.data import pipelines_folder

    (pipelines_folder() / "gone.json").write_text('{"not": "a pipeline"}')
    assert training_folder(trained) is None


def test_a_pipeline_not_in_the_local_cache_has_no_revision():
    from imgai.diffusion.forecast import _cached_hub_revision

    assert _cached_hub_revision("someone/some-pipeline@main") is None
    assert _cached_hub_revision("not a hub id") is None


def test_connections_that_switch_a_new_file_to_wal_together_all_succeed(tmp_path):
    """Two connections switching one file to WAL at once deadlock in SQLite: one of them is told
    'database is locked' at once, without the busy wait (a bare PRAGMA failed in about one round
    of ten here). db.use_wal waits its turn, so every connection ends up in WAL."""
    import sqlite3

    from imgai.db import use_wal

    for n in range(100):
        path = tmp_path / f"r{n}.sqlite"
        start, errors, modes = threading.Barrier(4), [], []

        def switch():
            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            start.wait()
            try:
                use_wal(conn, 30)
                modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            except sqlite3.Error as exc:  # pragma: no cover - the assertion below reports it
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=switch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (errors, modes) == ([], ["wal"] * 4), f"round {n}"
