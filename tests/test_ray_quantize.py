"""The conversion matrix on Ray: one Ray task per target, one injected failure that stops nothing,
outputs in the same layout (quantization_info.json, card) as a local run."""

from __future__ import annotations

import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from imgai.diffusion import QuantizeRequest, convert, run
from imgai.diffusion.checks import CheckConfig
from imgai.diffusion.info import read_info
from imgai.engines import EngineOptions
from tests.diffusion_fixtures import broken_source, tiny_sources  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.skipif(find_spec("ray") is None, reason="Ray is not installed (requirements-ray.txt)"),
              pytest.mark.timeout(600)]
CHECK = {"check_steps": 2, "check_size": (32, 32), "check_prompts": ("a photo of the cat",)}


@pytest.fixture
def ray_tmpdir(monkeypatch):
    root = tempfile.mkdtemp(prefix="imgai-rayq-")     # short: Ray's socket paths must fit
    monkeypatch.setenv("RAY_TMPDIR", root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_matrix_on_ray_one_failure_stops_nothing(imgai_home, tiny_sources, broken_source, ray_tmpdir, tmp_path):
    import ray

    request = QuantizeRequest(model=("sd15", "sdxl-turbo"), backend="both", quantization="INT8",
                              sources={"sd15": str(tiny_sources["sd15"]), "sdxl-turbo": str(broken_source)},
                              engine=EngineOptions("ray"), **CHECK)
    seen = []
    results = {r.name: r for r in run(request, on_result=lambda r: seen.append(r.name))}
    assert sorted(seen) == sorted(results) and not ray.is_initialized()
    log = (imgai_home / "logs" / "imgai.log").read_text()
    assert "sd15-torch-int8: submitted to Ray" in log and "sdxl-turbo-torch-int8: submitted to Ray" in log
    assert results["sd15-torch-int8"].status == "done", results["sd15-torch-int8"].reason
    assert results["sdxl-turbo-torch-int8"].status == "failed"
    assert "truncated" in results["sdxl-turbo-torch-int8"].reason
    assert all(results[n].status == "skipped" for n in ("sd15-onnx-int8", "sdxl-turbo-onnx-int8"))
    out = imgai_home / "converted_models"
    assert [p.name for p in out.iterdir()] == ["sd15-torch-int8"]          # no staging folder left behind

    # the same target converted locally: the same files, the same record, the same check
    local = convert("sd15", backend="pytorch", quantization="INT8", source=str(tiny_sources["sd15"]),
                    output_dir=tmp_path / "local", check=CheckConfig(prompts=CHECK["check_prompts"], steps=2,
                                                                     width=32, height=32))
    on_ray, here = out / "sd15-torch-int8", Path(local.path)
    assert sorted(p.relative_to(on_ray).as_posix() for p in on_ray.rglob("*")) == \
        sorted(p.relative_to(here).as_posix() for p in here.rglob("*"))
    ray_info, local_info = read_info(on_ray), read_info(here)
    assert {k: ray_info[k] for k in ("key", "backend", "quantization", "source")} == \
        {k: local_info[k] for k in ("key", "backend", "quantization", "source")}
    assert ray_info["check"]["min_psnr_db"] == pytest.approx(local_info["check"]["min_psnr_db"], abs=1.0)
    assert (on_ray / "README.md").read_text().count("int8") == (here / "README.md").read_text().count("int8")
