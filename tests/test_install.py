"""imgai as users install it, not as this checkout runs it: a non-editable `pip install .` has every
module and the card templates (the top-level templates/, installed as imgai/templates/), and the tag-only install (`requirements-tag.txt` + `pip install
--no-deps .`, no torch) adds, validates and tags a ready ONNX model. Each builds its own venv in
a temp folder and runs from outside the source tree; pip builds the wheel, and the venvs are filled
with uv where `make venv` used it (`_uv`), with pip where it did not."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _clean_env(**extra) -> dict:
    """This environment without anything that points back at the checkout or the shared venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def imgai_wheel(tmp_path_factory) -> Path:
    """imgai built as a wheel (as `pip install .` builds it) from a copy of the build files, imgai/ and
    templates/, so the build writes nothing into the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, src)
    for name in ("imgai", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", src],
         env=_clean_env(), cwd=tmp)
    shutil.rmtree(src)
    [wheel] = (tmp / "dist").glob("imgai-*.whl")
    return wheel


@functools.cache
def _uv() -> tuple[str, ...] | None:
    """uv as `make venv` runs it (installed next to this Python, reading the sources pip is configured
    with), or None where the Makefile fell back to pip. uv links the wheels from the cache `make venv`
    filled: the tag-only venv takes ~1 s where pip takes ~20 s (a venv with pip, then every wheel
    unpacked and compiled again). The wheel under test is still built by pip, as `pip install .` builds it."""
    uv = Path(sys.executable).with_name("uv")
    if not uv.is_file():
        return None
    sources = _run([sys.executable, ROOT / "tools" / "uv_sources.py"]).stdout.split()
    return (str(uv), *sources)


def _venv(path: Path, *, see_packages_of_this_venv: bool) -> Path:
    uv = _uv()
    _run([*uv[:1], "venv", "-q", "--python", sys.executable, path] if uv else [sys.executable, "-m", "venv", path],
         env=_clean_env())
    python = path / "bin" / "python"
    if see_packages_of_this_venv:     # torch, huggingface_hub, … from the test venv, imgai not
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
        Path(purelib, "test-venv-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(python: Path, command: str, *args, cwd: Path) -> None:
    """`pip COMMAND ARGS` for the venv of `python` (uv's pip interface where `make venv` used uv)."""
    uv = _uv()
    sources = uv[1:] if uv and command == "install" else []
    _run([uv[0], "pip", command, "--python", python, *sources, *args] if uv else [python, "-m", "pip", command, *args],
         env=_clean_env(), cwd=cwd)


def test_the_wheel_holds_every_module_and_the_templates(imgai_wheel):
    import zipfile

    held = set(zipfile.ZipFile(imgai_wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "imgai").rglob("*")
               if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}   # code, and data such as the support table
    templates = {f"imgai/templates/{p.name}" for p in (ROOT / "templates").glob("*.j2")}
    assert templates and not modules - held and not templates - held, sorted((modules | templates) - held)


def test_a_non_editable_install_renders_a_card_from_its_own_templates(imgai_wheel, tmp_path):
    python = _venv(tmp_path / "venv", see_packages_of_this_venv=True)
    _pip(python, "install", "-q", "--no-deps", imgai_wheel, cwd=tmp_path)
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        import imgai
        from imgai.cards import render_card, templates_folder
        from imgai.classify.preprocess import PreprocessSpec

        spec = PreprocessSpec(resize={"shortest_edge": 8}, crop={"height": 8, "width": 8})
        card = render_card("classifier.md.j2", card_data={"license": "apache-2.0", "library_name": "onnx"},
                           model_name="Tiny tagger", num_labels=3, labels_preview=["cat", "dog", "fox"],
                           preprocess=spec.to_dict(), architecture="onnx", library="onnx", source="local")
        folder = templates_folder()
        print(json.dumps({"imgai": imgai.__file__, "folder": str(folder), "templates": sorted(p.name for p in folder.iterdir()),
                          "card": str(card)}))
    """)
    out = json.loads(_run([python, "-c", script], env=_clean_env(), cwd=tmp_path).stdout)
    assert Path(out["imgai"]).is_relative_to(tmp_path / "venv"), out["imgai"]
    assert Path(out["folder"]).is_relative_to(tmp_path / "venv"), out["folder"]     # the wheel's own copy
    assert out["templates"] == ["classifier.md.j2", "diffusion.md.j2"]
    assert "# Tiny tagger (ONNX)" in out["card"] and "license: apache-2.0" in out["card"]
    assert "`cat`, `dog`, `fox`" in out["card"]


def _requirements(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def tag_only_python(imgai_wheel, tmp_path_factory) -> Path:
    """A venv with only requirements-tag.txt and imgai (--no-deps): no torch, no transformers."""
    tmp = tmp_path_factory.mktemp("tag-only")
    python = _venv(tmp / "venv", see_packages_of_this_venv=False)
    _pip(python, "install", "-q", "-r", ROOT / "requirements-tag.txt", cwd=tmp)
    _pip(python, "install", "-q", "--no-deps", imgai_wheel, cwd=tmp)
    _pip(python, "check", cwd=tmp)
    missing = _run([python, "-c", "import importlib.util as u; print([m for m in ('torch', 'transformers', 'timm') "
                                  "if u.find_spec(m)])"], env=_clean_env(), cwd=tmp).stdout.strip()
    assert missing == "[]", f"the tag-only venv has {missing}"
    return python


def _tiny_onnx_classifier(folder: Path, labels: list[str]) -> Path:
    """model.onnx: mean colour per channel → a fixed 3×N linear layer → logits; opset 17."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[4.0, -2.0, -2.0], [-2.0, 4.0, -2.0], [-2.0, -2.0, 4.0]], np.float32)[:, : len(labels)]
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "weights"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[numpy_helper.from_array(weights, "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    folder.mkdir(parents=True)
    onnx.save(model, folder / "model.onnx")
    (folder / "preprocess.json").write_text(json.dumps(
        {"resize": {"shortest_edge": 16}, "crop": {"height": 16, "width": 16}, "interpolation": "bilinear",
         "rescale_factor": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}))
    return folder


def test_tag_only_install_adds_validates_and_tags_a_ready_onnx_model(tag_only_python, tmp_path):
    from tests.factories import photo

    labels = ["red", "green", "blue"]
    with_txt = _tiny_onnx_classifier(tmp_path / "with-txt", labels)
    (with_txt / "labels.txt").write_text("\n".join(labels) + "\n")
    with_json = _tiny_onnx_classifier(tmp_path / "with-json", labels)
    (with_json / "labels.json").write_text(json.dumps(dict(enumerate(labels))))
    cat = photo("chelsea", tmp_path)                       # scikit-image's cat, a real photo
    script = textwrap.dedent("""
        import io, json, sys
        from contextlib import redirect_stdout
        from imgai.cli import main

        def cli(*argv):
            out = io.StringIO()
            with redirect_stdout(out):
                code = main([str(a) for a in argv])
            assert code == 0, (argv, code, out.getvalue())
            return out.getvalue()

        added = [json.loads(cli("models", "add", folder, "--json")) for folder in sys.argv[1:3]]
        for model in added:
            json.loads(cli("models", "validate", model["id"], "--json"))
        cli("models", "enable", added[0]["id"])
        cli("models", "default", added[0]["id"])
        tags = json.loads(cli("tag", sys.argv[3], "--format", "json", "--top-k", "3"))
        print(json.dumps({"added": added, "tags": tags, "torch": "torch" in sys.modules,
                          "heavy": sorted(m for m in ("torch", "transformers", "timm", "diffusers", "gradio")
                                          if m in sys.modules)}))
    """)
    env = _clean_env(IMGAI_HOME=str(tmp_path / "home"), IMGAI_NO_DEMO="1", HF_HUB_OFFLINE="1")
    run = _run([tag_only_python, "-c", script, with_txt, with_json, cat], env=env, cwd=tmp_path)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["torch"] is False and out["heavy"] == []
    for model in out["added"]:
        assert (model["type"], model["library"]) == ("ONNX", "onnx")
        assert model["validation"]["passed"], model["validation"]
    [result] = out["tags"]
    assert result["error"] is None and [t["label"] for t in result["tags"]][0] in labels
    assert abs(sum(t["score"] for t in result["tags"]) - 1.0) < 1e-5        # softmax over three labels


def _names(specs: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!\[; ]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_the_tag_flavour_is_one_set_of_packages():
    """pyproject's core dependencies + `tag` extra are what requirements-tag.txt installs, and a missing
    package's hint names that file and that extra."""
    import tomllib

    from imgai.errors import MissingDependencyError, require

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"] + project["optional-dependencies"]["tag"])
    assert wanted == _names(_requirements(ROOT / "requirements-tag.txt"))
    with pytest.raises(MissingDependencyError, match=r"requirements-tag\.txt.*imgai\[tag\]"):
        require("imgai_no_such_module", extra="tag")


def test_make_venv_gives_uv_the_package_sources_pip_is_configured_with():
    """uv ignores pip.conf: tools/uv_sources.py turns `pip config list` into uv's flags, once each,
    keeping every URL of a space-separated list, so `make venv` reads the same local wheels pip would."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from uv_sources import uv_flags
    finally:
        sys.path.remove(str(ROOT / "tools"))
    config = ("global.cert='/etc/ssl/certs/ca.crt'\n"
              "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'\n"
              "global.find-links='/opt/wheels'\n"
              ":env:.find-links='/opt/wheels'\n"
              "global.constraint='/etc/pip/constraints.txt'\n")
    assert uv_flags(config) == ["--extra-index-url", "file:///opt/a/simple", "--extra-index-url", "file:///opt/b/simple",
                                "--find-links", "/opt/wheels", "--constraint", "/etc/pip/constraints.txt",
                                "--index-strategy", "unsafe-best-match"]
    assert uv_flags("global.find-links='/w'\n") == ["--find-links", "/w"]
    assert uv_flags("") == []
    assert "uv_sources.py" in (ROOT / "Makefile").read_text()
