"""`imgai quantize` and the seed's `model_converter.py`, driven in-process; the run itself is a
`quantize` job in a worker subprocess, as it is for users."""

from __future__ import annotations

import json

import pytest

import model_converter
from imgai import jobs
from imgai.cli import main
from imgai.diffusion.info import read_info
from imgai.diffusion.job import abort_job
from tests.diffusion_fixtures import CHECK, broken_source, sources_args, tiny_sources  # noqa: F401 (fixtures)

ONE_PROMPT = ["--check-prompt", "a photo of the cat"]


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_all_both_matrix_with_one_failure_then_resume(imgai_home, tiny_sources, broken_source, capsys):
    """`--model all --backend both`: INT8 runs on PyTorch for every key, ONNX INT8 is skipped with its
    reason, the broken sdxl-turbo source fails without stopping the others, and the exit code says so.
    The re-run (through model_converter.py) skips what is done and finishes what failed."""
    sources = {**tiny_sources, "sdxl-turbo": broken_source}
    code = main(["quantize", "--model", "all", "--backend", "both", "--quantization", "INT8",
                 *sources_args(sources), *CHECK, *ONE_PROMPT, "--wait", "--json"])
    first = _json(capsys)
    assert code == 1
    status = {t["name"]: t for t in first["targets"]}
    assert len(status) == 8
    assert [n for n, t in status.items() if t["status"] == "done"] == [
        "sd15-torch-int8", "sdxl-torch-int8", "flux1-torch-int8"]
    assert status["sdxl-turbo-torch-int8"]["status"] == "failed"
    assert "truncated" in status["sdxl-turbo-torch-int8"]["reason"]
    assert all(t["status"] == "skipped" and "ONNX is exported in FP32 only" in t["reason"]
               for n, t in status.items() if "-onnx-" in n)
    job = jobs.get(first["job_id"])
    assert job.state == jobs.FAILED and "1 of 8 targets failed: sdxl-turbo-torch-int8" in job.error
    out = imgai_home / "converted_models"
    assert sorted(p.name for p in out.iterdir()) == ["flux1-torch-int8", "sd15-torch-int8", "sdxl-torch-int8"]
    created = read_info(out / "sd15-torch-int8")["created"]

    # the seed's entry point, same flags, for people (a table); the source is fixed now
    code = model_converter.main(["--model", "all", "--backend", "both", "--quantization", "INT8",
                                 *sources_args(tiny_sources), *CHECK, *ONE_PROMPT, "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert "skip sd15-onnx-int8: ONNX is exported in FP32 only" in captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0].split()[:4] == ["TARGET", "STATUS", "PSNR", "dB"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {"sd15-torch-int8": "skipped", "sd15-onnx-int8": "skipped", "sdxl-torch-int8": "skipped",
                    "sdxl-onnx-int8": "skipped", "sdxl-turbo-torch-int8": "done", "sdxl-turbo-onnx-int8": "skipped",
                    "flux1-torch-int8": "skipped", "flux1-onnx-int8": "skipped"}
    assert "up to date" in next(line for line in lines if line.startswith("sd15-torch-int8"))
    assert read_info(out / "sd15-torch-int8")["created"] == created
    assert read_info(out / "sdxl-turbo-torch-int8")["check"]["passed"]


def test_usage_errors(imgai_home, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["quantize", "--backend", "onnx"])
    assert exc.value.code == 2 and "--model is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["quantize", "--model", "sd3"])
    assert exc.value.code == 2
    assert main(["quantize", "--model", "all", "--source", "./somewhere"]) == 1
    assert "write it as KEY=REPO_ID|PATH" in capsys.readouterr().err
    assert main(["quantize", "--model", "sd15", "--push", "a/b"]) == 1
    assert "Hub user or organisation" in capsys.readouterr().err
    assert not jobs.list_jobs(kind="quantize"), "a refused request must queue nothing"


def test_list_shows_the_key_table(imgai_home, capsys):
    assert main(["quantize", "--list", "--json"]) == 0
    rows = _json(capsys)
    assert [r["key"] for r in rows] == ["sd15", "sdxl", "sdxl-turbo", "flux1"]
    assert rows[3]["pipeline"] == "FluxPipeline" and rows[0]["onnx"] == "FP32"


def test_an_aborted_run_leaves_no_staging_folder(imgai_home, tmp_path):
    out = tmp_path / "out"
    (out / ".imgai-tmp-sd15-torch-int8-abc123").mkdir(parents=True)
    (out / ".imgai-tmp-sd15-torch-int8-other").mkdir()
    (out / "sd15-torch-int8").mkdir()
    job = jobs.submit("quantize", {"output_dir": str(out)}, start=False)
    job = jobs.Job(**{**job.to_dict(), "id": "abc123"})
    abort_job(job, "interrupted")
    assert sorted(p.name for p in out.iterdir()) == [".imgai-tmp-sd15-torch-int8-other", "sd15-torch-int8"]
    jobs.cancel(jobs.list_jobs(kind="quantize")[0].id)
