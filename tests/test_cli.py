"""The CLI's own contracts: JSON shapes, jobs commands, doctor, usage errors."""

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from imgai import jobs, registry
from tests.factories import random_image


def test_models_list_and_show_json(imgai_home, cli):
    registry.create(name="A model", source="local:a", architecture="resnet18", library="timm")
    code, out, _ = cli("models", "list", "--json")
    models = json.loads(out)
    assert code == 0 and list(models[0])[:3] == ["id", "name", "source"]
    assert models[0]["type"] == "PyTorch" and models[0]["conversion"] == "NotConverted"
    code, out, _ = cli("models", "show", "a-model", "--json")
    assert json.loads(out)["id"] == "a-model"
    code, out, _ = cli("models", "list")
    assert "a-model" in out and "NotConverted" in out


def test_unknown_model_is_an_error_with_the_fix(imgai_home, cli):
    code, _, err = cli("models", "convert", "ghost")
    assert code == 1 and "no model 'ghost'" in err and "imgai models list" in err


def test_jobs_list_show_cancel(imgai_home, cli):
    done = jobs.submit("selftest", {"steps": 1, "delay": 0})
    jobs.wait(done.id, timeout=60)
    code, out, _ = cli("jobs", "list", "--json")
    assert code == 0 and json.loads(out)[0]["id"] == done.id
    code, out, _ = cli("jobs", "show", done.id, "--json")
    shown = json.loads(out)
    assert shown["state"] == "succeeded" and [e["message"] for e in shown["events"]][-1] == "succeeded"
    code, _, err = cli("jobs", "cancel", done.id)
    assert code == 1 and "already succeeded" in err
    long = jobs.submit("selftest", {"steps": 100, "delay": 0.05})
    code, out, _ = cli("jobs", "cancel", long.id, "--json")
    assert code == 0 and json.loads(out)["state"] == "cancelled"


def test_doctor_json(imgai_home, cli):
    code, out, _ = cli("doctor", "--json")
    report = json.loads(out)
    assert code == 0 and report["can_tag"] and report["can_convert"]
    assert report["versions"]["onnxruntime"] == version("onnxruntime")      # whatever is installed
    assert "CPUExecutionProvider" in report["onnxruntime_providers"]
    assert report["data_folder"] == str(imgai_home.resolve()) and report["free_disk_gb"] > 0
    assert report["hub"].startswith(("offline", "unreachable", "reachable"))


# Exit codes, the same for every command: 0 done, 1 the operation failed or a value is bad,
# 2 a usage error (argparse). {img} is an image file.
EXIT_CODES = [
    (0, ["models", "list"]),
    (0, ["jobs", "list", "--json"]),
    (0, ["train", "architectures", "--json"]),
    (0, ["train", "data", "list", "--json"]),
    (0, ["--version"]),
    (1, ["models", "show", "ghost"]),
    (1, ["models", "convert", "ghost", "--wait"]),
    (1, ["jobs", "cancel", "nope"]),
    (1, ["tag", "{img}", "--top-k", "0"]),                 # a bad setting is a bad value, not a usage error
    (1, ["tag", "{img}", "--json", "--format", "csv"]),
    (1, ["tag", "{img}"]),                                 # no model to tag with yet
    (1, ["train", "data", "remove", "ghost", "--json"]),
    (1, ["train", "data", "preview", "ghost", "--json"]),
    (1, ["train", "start", "ghost", "--data", "nowhere"]),
    (2, []),
    (2, ["models", "frobnicate"]),
    (2, ["models", "list", "--bogus"]),
    (2, ["tag"]),
    (2, ["quantize"]),                                     # --model is required
    (2, ["quantize", "--model", "sd99"]),
    (2, ["hub", "search", "--limit", "many"]),
    (2, ["train", "list", "--state", "lost"]),
]


@pytest.mark.parametrize("expected, args", EXIT_CODES, ids=[" ".join(a) or "(none)" for _, a in EXIT_CODES])
def test_exit_codes(imgai_home, tmp_path, cli, expected, args):
    img = random_image(tmp_path / "x.png")
    code, _, err = cli(*[a.format(img=img) for a in args])
    assert code == expected, err
    if expected == 1:
        assert err.startswith("error: ") and "Traceback" not in err


def _leaf_parsers(parser, path=()):
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaf_parsers(child, (*path, name))


def test_every_command_takes_json_and_every_job_command_takes_wait():
    from imgai.cli import build_parser

    leaves = dict(_leaf_parsers(build_parser()))
    assert len(leaves) > 30
    assert [c for c, p in leaves.items() if "--json" not in p._option_string_actions] == []
    queues_a_job = {"models convert", "models quantize", "hub download", "quantize", "train start", "train resume",
                    "train retrain"}
    assert {c for c, p in leaves.items() if "--wait" in p._option_string_actions} == queues_a_job


def test_wait_follows_a_job_with_a_line_per_stage_or_a_bar_on_a_terminal(imgai_home, tiny_model_cache, cli,
                                                                          monkeypatch):
    import io

    from imgai.cli.output import follow
    from imgai.sources import add_model

    model = add_model(str(tiny_model_cache("timm-mobilenetv3")))
    code, out, err = cli("models", "convert", model.id, "--wait")
    assert code == 0 and "succeeded" in out
    stages = [line for line in err.splitlines() if line.strip()]      # not a terminal: plain lines
    assert len(stages) >= 2 and all("%" in line for line in stages) and "\r" not in err
    job_id = jobs.list_jobs(kind="convert")[0].id

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert follow(job_id).state == "succeeded"
    assert "100/100%" in terminal.getvalue() and "|" in terminal.getvalue()   # a tqdm bar


def test_wait_on_work_already_running_follows_that_job(imgai_home, tiny_model_cache, cli):
    """`imgai models convert ID --wait` on a model that is Converting (the app queued it, or the demo
    job converts it) follows the running job to its end instead of refusing; no second job."""
    from imgai.classify.convert import submit_conversion
    from imgai.sources import add_model

    model = add_model(str(tiny_model_cache("timm-mobilenetv3")))
    running = submit_conversion(model.id, dispatch=False)
    assert registry.get(model.id).conversion == "Converting"
    jobs.dispatch()
    code, out, err = cli("models", "convert", model.id, "--wait")
    assert code == 0 and "succeeded" in out, err
    assert f"convert job {running.id} is already" in err and "following it" in err
    assert [j.id for j in jobs.list_jobs(kind="convert")] == [running.id]
    assert registry.get(model.id).conversion == "Converted"


@pytest.fixture
def converted(imgai_home, tiny_model_cache, tmp_path):
    """A converted, enabled default model and a folder of images, for the CLI in subprocesses."""
    from imgai.classify.convert import convert
    from imgai.sources import add_model

    model = convert(add_model(str(tiny_model_cache("timm-mobilenetv3"))).id)
    registry.set_enabled(model.id, True)
    registry.set_default(model.id)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(20):
        random_image(folder / f"{i:02d}.png", seed=i)
    return model.id, folder


@pytest.mark.parametrize("command", ["tag", "models show", "models list"])
def test_a_reader_that_stops_early_ends_the_command_quietly(converted, command):
    """`imgai … | head -1`, made certain: stdout is a pipe whose reader is already gone."""
    model_id, folder = converted
    args = {"tag": ["tag", str(folder), "--format", "jsonl"], "models show": ["models", "show", model_id],
            "models list": ["models", "list", "--json"]}[command]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "imgai", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr and "Exception ignored" not in done.stderr


def test_a_real_pipe_to_head(converted):
    model_id, folder = converted
    done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} -m imgai tag {folder} --format jsonl | head -1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"].endswith("00.png") and "Traceback" not in done.stderr


def test_console_script_and_module_entry_points(imgai_home):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "imgai", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "imgai 0.1.0"


def test_tag_only_install_needs_no_torch(imgai_home, tmp_path, tiny_model_cache):
    """Tagging imports neither torch nor transformers (a tag-only install has neither)."""
    import subprocess
    import sys

    from imgai.classify.convert import convert
    from imgai.sources import add_model
    from tests.factories import random_image

    convert(add_model(str(tiny_model_cache("timm-mobilenetv3"))).id)
    img = random_image(tmp_path / "x.png")
    code = ("import sys, builtins\n"
            "real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name.split('.')[0] in ('torch', 'transformers', 'timm', 'optimum', 'diffusers'):\n"
            "        raise ImportError('tag-only install: ' + name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            "from imgai.cli import main\n"
            f"sys.exit(main(['tag', {str(img)!r}, '--format', 'json']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["tags"]
