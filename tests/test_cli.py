"""The CLI's own contracts: JSON shapes, jobs commands, doctor, usage errors."""

import json

from imgai import jobs, registry


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
    assert report["versions"]["onnxruntime"] == "1.32.0" and "CPUExecutionProvider" in report["onnxruntime_providers"]
    assert report["data_folder"] == str(imgai_home.resolve()) and report["free_disk_gb"] > 0
    assert report["hub"].startswith(("offline", "unreachable", "reachable"))


def test_usage_error_exits_2(cli):
    assert cli("models", "frobnicate")[0] == 2
    assert cli()[0] == 2


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
