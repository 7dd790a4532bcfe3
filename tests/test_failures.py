"""Bad input gets a clear message, status Failed where a model is involved, and nothing is lost."""

import json
import os
import shutil
import signal

import pytest

from imgai import jobs, registry, startup
from imgai.errors import UnsafeFileError, UnsupportedModelError, ValidationError
from imgai.sources import add_model
from tests.factories import make_transformers_model
from tests.waiting import wait_until


def test_unsupported_architecture_names_what_was_found(imgai_home, tmp_path, cli):
    folder = tmp_path / "mystery"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "mystery",
                                                    "architectures": ["MysteryForImageClassification"]}))
    code, _, err = cli("models", "add", folder)
    assert code == 1
    assert "'mystery'" in err and "MysteryForImageClassification" in err and "ResNet" in err and "hub families" in err
    assert registry.list_models() == []


def test_unsupported_timm_architecture(imgai_home, tmp_path):
    folder = tmp_path / "mystery"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "mystery_net_tiny", "num_classes": 3}))
    with pytest.raises(UnsupportedModelError, match="timm 'mystery_net_tiny' is not in a family imgai's sweep tried"):
        add_model(str(folder))


def test_missing_weights(imgai_home, tiny_model_cache, tmp_path):
    folder = shutil.copytree(tiny_model_cache("transformers-resnet"), tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UnsupportedModelError, match="no weights"):
        add_model(str(folder))
    assert registry.list_models() == []


def test_not_a_model_source(imgai_home, cli):
    code, _, err = cli("models", "add", "definitely not a model")
    assert code == 1 and "neither an existing folder nor a Hub id" in err


class Payload:
    """Unpickling this runs `touch <marker>`: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(imgai_home, tiny_model_cache, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = shutil.copytree(tiny_model_cache("transformers-resnet"), tmp_path / "evil")
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({**state, "extra": Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeFileError, match="refused pytorch_model.bin"):
        add_model(str(folder))
    assert not marker.exists(), "the pickle payload ran"
    assert registry.list_models() == []


def test_plain_pickle_weights_load_with_weights_only(imgai_home, tiny_model_cache, tmp_path):
    import torch
    from safetensors.torch import load_file

    from imgai.classify.convert import convert

    folder = shutil.copytree(tiny_model_cache("transformers-resnet"), tmp_path / "bin")
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    model = add_model(str(folder))
    assert convert(model.id).conversion == "Converted"


def test_damaged_onnx_after_conversion_fails_validation(imgai_home, tiny_model_cache, cli):
    from imgai.classify.convert import convert

    model = convert(add_model(str(tiny_model_cache("timm-mobilenetv3"))).id)
    assert model.enabled
    onnx_path = imgai_home / "models" / model.id / "onnx" / "model.onnx"
    data = bytearray(onnx_path.read_bytes())
    onnx_path.write_bytes(data[: len(data) // 2])
    code, out, err = cli("models", "validate", model.id, "--json")
    assert code == 1
    result = json.loads(out)
    assert result["passed"] is False and "model.onnx" in result["problems"][0]
    after = registry.get(model.id)
    assert not after.enabled and not after.default and after.error.startswith("validation failed")
    code, _, err = cli("tag", str(onnx_path), "--model", model.id)
    assert code == 1 and f"cannot tag with {model.id!r}" in err and "not passed validation" in err


def test_wrong_label_count_fails_validation(imgai_home, tiny_model_cache):
    from imgai.classify.convert import convert
    from imgai.classify.validate import validate

    model = convert(add_model(str(tiny_model_cache("timm-mobilenetv3"))).id)
    labels = imgai_home / "models" / model.id / "onnx" / "labels.json"
    labels.write_text(json.dumps({"0": "only one"}))
    result = validate(model.id)
    assert not result.passed
    assert "outputs 3 scores but labels.json has 1 labels" in result.problems[0]


def test_conversion_failure_marks_failed_and_keeps_error(imgai_home, tiny_model_cache, tmp_path, cli):
    folder = shutil.copytree(tiny_model_cache("timm-resnet"), tmp_path / "m")
    model = add_model(str(folder))
    weights = imgai_home / "models" / model.id / "pytorch" / "model.safetensors"
    weights.write_bytes(b"garbage")
    code, _, err = cli("models", "convert", model.id, "--wait")
    assert code == 1
    failed = registry.get(model.id)
    assert (failed.type, failed.conversion) == ("PyTorch", "Failed")
    assert "safetensors" in failed.error
    assert not (imgai_home / "models" / model.id / "onnx").exists()
    assert list((imgai_home / "tmp").iterdir()) == []     # no partial output left behind


def test_killed_conversion_is_interrupted_then_retry_succeeds(imgai_home, tiny_model_cache):
    from imgai.classify.convert import submit_conversion

    model = add_model(str(tiny_model_cache("timm-efficientnet")))
    job = submit_conversion(model.id)
    assert registry.get(model.id).conversion == "Converting"
    _kill_when_running(job.id)
    startup.prepare(demo=False)                       # the next start of the app or CLI
    dead = registry.get(model.id)
    assert (dead.conversion, dead.error) == ("Failed", "interrupted")
    assert jobs.get(job.id).state == "failed" and jobs.get(job.id).error.startswith("interrupted")
    retry = submit_conversion(model.id)
    assert jobs.wait(retry.id, timeout=300).state == "succeeded"
    assert registry.get(model.id).conversion == "Converted"


@pytest.mark.parametrize("read", ["models list", "models show", "jobs show", "train list"])
def test_reads_reconcile_a_killed_conversion_is_failed_interrupted_at_once(imgai_home, tiny_model_cache, cli, read):
    """No recovery command and no restart: the very first read after the kill says what happened."""
    from imgai import db
    from imgai.classify.convert import submit_conversion

    model = add_model(str(tiny_model_cache("timm-efficientnet")))
    job = submit_conversion(model.id)
    _kill_when_running(job.id)
    subject = {"models show": [model.id], "jobs show": [job.id]}.get(read, [])
    code, out, _ = cli(*read.split(), *subject, "--json")
    assert code == 0
    if read.startswith("models"):
        shown = json.loads(out)
        shown = shown if read == "models show" else next(m for m in shown if m["id"] == model.id)
        assert (shown["conversion"], shown["error"]) == ("Failed", "interrupted")
    elif read == "jobs show":
        shown = json.loads(out)
        assert shown["state"] == "failed" and shown["error"].startswith("interrupted")
    # whichever read came first, the job and its model are settled in the database itself
    row = db.query("SELECT conversion, error FROM models WHERE id = ?", (model.id,))[0]
    assert (row["conversion"], row["error"]) == ("Failed", "interrupted")
    assert db.query("SELECT state FROM jobs WHERE id = ?", (job.id,))[0]["state"] == "failed"


def _kill_when_running(job_id: str) -> None:
    """kill -9 a job's worker once it runs, and wait until the process is gone (nothing else)."""
    running = wait_until(lambda: (j := jobs.get(job_id)).state == "running" and j.pid and j,
                         what=f"job {job_id} to run")
    os.killpg(running.pid, signal.SIGKILL)
    wait_until(lambda: not jobs._alive(running.pid, running.pid_started), what=f"worker {running.pid} to die")


def test_cancelled_conversion_goes_back_to_not_converted(imgai_home, tiny_model_cache):
    from imgai.classify.convert import submit_conversion

    model = add_model(str(tiny_model_cache("timm-efficientnet")))
    job = submit_conversion(model.id)
    wait_until(lambda: jobs.get(job.id).state == "running", what=f"job {job.id} to run")
    assert jobs.cancel(job.id).state == "cancelled"
    after = registry.get(model.id)
    assert (after.conversion, after.error) == ("NotConverted", "conversion cancelled")


def test_onnx_with_external_data_outside_its_folder_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from imgai.classify.onnx_file import check_onnx_file

    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    tensor.ClearField("float_data")
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [tensor])
    path = tmp_path / "m" / "model.onnx"
    path.parent.mkdir()
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsafeFileError, match="outside its folder"):
        check_onnx_file(path)


def test_empty_onnx_is_rejected(tmp_path):
    from imgai.classify.onnx_file import check_onnx_file

    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ValidationError, match="0 bytes"):
        check_onnx_file(tmp_path / "model.onnx")
