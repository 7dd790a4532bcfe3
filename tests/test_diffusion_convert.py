"""Every key × every supported backend/quantization, on tiny pipelines built in code: the output
layout, the files load back, the check passes, quantization_info.json and the card say what was
done, and the card's usage snippet runs. Plus the ways a target fails cleanly."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from imgai import words
from imgai.diffusion import MODEL_KEYS, CheckConfig, QuantizeRequest, run
from imgai.diffusion.info import read_info
from imgai.diffusion.source import fingerprint, read_safetensors_params
from imgai.diffusion.targets import RunContext, convert_target
from tests.diffusion_fixtures import KEYS, broken_source, tiny_sources  # noqa: F401 (fixtures)

FORMATS = [("pytorch", "INT8"), ("pytorch", "FP16"), ("onnx", "FP32")]
PROMPT = ("a photo of the cat",)
TINY_CHECK = CheckConfig(prompts=PROMPT, steps=2, height=32, width=32)   # tiny pipelines: 1 prompt, 2 steps


@pytest.fixture(scope="module")
def converted(tiny_sources, tmp_path_factory):
    """All twelve targets, converted once for the module. One run context, so each key's original
    pipeline is sampled once and its images serve the three formats."""
    home = tmp_path_factory.mktemp("diffusion-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMGAI_HOME", str(home))
        ctx = RunContext(output_dir=home / "converted_models", check=TINY_CHECK)
        results = {(key, backend, quantization): convert_target(key, backend, quantization, ctx=ctx,
                                                                 source_spec=str(tiny_sources[key]))
                   for key in KEYS for backend, quantization in FORMATS}
    return home / "converted_models", results


def _weights(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".onnx", ".onnx_data",
                                                                          ".bin", ".pt", ".pth", ".ckpt")]


@pytest.mark.parametrize("backend,quantization", FORMATS)
@pytest.mark.parametrize("key", KEYS)
def test_target_is_converted_checked_and_described(converted, tiny_sources, key, backend, quantization):
    out_dir, results = converted
    result = results[(key, backend, quantization)]
    assert result.status == "done", result.reason
    model_key = MODEL_KEYS[key]
    folder = out_dir / result.name
    assert Path(result.path) == folder
    assert not [p.name for p in out_dir.iterdir() if p.name.startswith(".")], "staging folders left behind"

    # layout, as the original tool wrote it
    for name in ("model_index.json", "quantization_info.json", "README.md", "scheduler", "tokenizer",
                 "check/original_0.png", "check/converted_0.png"):
        assert (folder / name).exists(), name
    weights = _weights(folder)
    if backend == "pytorch":
        assert {p.suffix for p in weights} == {".safetensors"}, "every weight file must be safetensors"
        for comp in (model_key.denoiser, "vae", *model_key.text_encoders):
            assert list((folder / comp).glob("*.safetensors")), comp
    else:
        assert {p.suffix for p in weights} == {".onnx"}
        for comp in (model_key.denoiser, "vae_encoder", "vae_decoder", *model_key.text_encoders):
            assert (folder / comp / "model.onnx").is_file(), comp

    # quantization_info.json
    info = read_info(folder)
    assert info["key"] == key and info["backend"] == backend and info["quantization"] == quantization
    assert info["source"]["revision"] == fingerprint(tiny_sources[key])
    assert info["source"]["kind"] == "local" and info["base_model"] == model_key.repo_id
    assert info["versions"]["torch"] and info["versions"]["diffusers"] and info["created"].endswith("Z")
    check = info["check"]
    assert check["passed"] and check["min_psnr_db"] >= check["threshold_psnr_db"]
    assert len(check["psnr_db"]) == len(check["ssim"]) == len(check["settings"]["prompts"]) == 1
    assert min(check["ssim"]) > 0.99
    assert check["seconds_per_step_original"] > 0 and check["seconds_per_step_converted"] > 0
    assert info["memory"]["peak_rss_bytes"] > 0 and info["memory"]["estimate"]["ram_bytes"] > 0
    assert set(info["durations_s"]) >= {"load", "convert", "check", "card"}
    # where it ran and what each pipeline took there: this machine's CPU, in float32
    assert info["device"]["device"] == "cpu" and info["device"]["dtype"] == "float32"
    assert info["settings"]["device"] == "cpu" and not info["device"]["offload"]
    memory = info["memory"]
    assert memory["sampling_peak_bytes_original"] > 0 and memory["sampling_peak_bytes_converted"] > 0
    assert "RSS" in memory["sampling_peak_measure"]
    card_text = (folder / "README.md").read_text()
    assert "peak memory while sampling" in card_text and "CPU, float32" in card_text
    comps = info["components"]
    assert model_key.denoiser in comps and all(c["bytes_before"] > 0 and c["bytes_after"] > 0 for c in comps.values())

    den = comps[model_key.denoiser]
    if quantization == "INT8":
        # the denoiser's Linear weights are int8; text encoders stay float32, and the reason is recorded
        assert den["quantized"] and "int8" in den["dtype_after"] and den["bytes_after"] < den["bytes_before"]
        counts = read_safetensors_params(next((folder / model_key.denoiser).glob("*.safetensors")))
        assert counts.get("I8", 0) > 0
        for te in model_key.text_encoders:
            assert not comps[te]["quantized"] and "safetensors" in comps[te]["note"]
        assert info["torchao"]["quant_type"]["_type"] == "Int8WeightOnlyConfig"
        assert info["load_torch_dtype"] == "float32"
    elif quantization == "FP16":
        assert den["dtype_after"] == comps["vae"]["dtype_after"] == "float16 100%"
        # mostly float16; transformers keeps T5's `wo` projections in float32 (_keep_in_fp32_modules)
        assert all(c["dtype_after"].startswith("float16") for c in comps.values()), comps
        assert info["size"]["ratio"] == pytest.approx(0.5, abs=0.03)
    else:
        assert {"vae_encoder", "vae_decoder"} <= set(comps)
        assert info["onnx"]["opset"] and "onnx.checker" in info["onnx"]["checker"]
        assert check["min_psnr_db"] > 100   # FP32 ONNX draws the same picture, to float rounding


@pytest.mark.parametrize("backend,quantization", FORMATS)
@pytest.mark.parametrize("key", KEYS)
def test_card_has_the_metadata_and_its_snippet_runs(converted, key, backend, quantization, tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    out_dir, results = converted
    folder = out_dir / results[(key, backend, quantization)].name
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["base_model"] == MODEL_KEYS[key].repo_id
    assert data.get("base_model_relation") == ("quantized" if quantization == "INT8" else None)
    assert data["library_name"] == ("diffusers" if backend == "pytorch" else "onnx")
    assert data["pipeline_tag"] == "text-to-image" and data["license"] == "openrail++"
    expected_tags = {"INT8": {"torchao", "int8"}, "FP16": {"fp16"}, "FP32": {"onnx"}}[quantization]
    assert expected_tags <= set(data["tags"])
    for section in ("## Upstream model", "## Memory requirements", "## Usage", "## Performance",
                    "## Limitations and fitness for purpose", "## How to reproduce"):
        assert section in card.text
    if quantization == "INT8":
        assert "text_encoder" in card.text and "cannot save TorchAO" in card.text

    # the usage snippet, exactly as rendered, with the repo id pointed at the local folder
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    repo_id = f"your-username/{folder.name}"
    assert f'"{repo_id}"' in snippet
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet.replace(repo_id, os.fspath(folder)), "card-snippet", "exec"), {})
    assert (tmp_path / f"{folder.name}.png").is_file()


def _ctx(tmp_path, **kw) -> RunContext:
    return RunContext(output_dir=tmp_path / "out", check=kw.pop("check", TINY_CHECK), **kw)


def test_rerun_skips_an_up_to_date_target_and_force_redoes_it(converted, tiny_sources):
    out_dir, _ = converted
    folder = out_dir / "flux1-torch-int8"
    before = (folder / "quantization_info.json").stat().st_mtime_ns
    request = QuantizeRequest(model="flux1", backend="both", quantization="INT8",
                              sources={"flux1": str(tiny_sources["flux1"])}, output_dir=str(out_dir),
                              check_steps=2, check_size=(32, 32), check_prompts=PROMPT)
    again = run(request)
    assert [r.status for r in again] == ["skipped", "skipped"]
    reason = words.render(again[0].reason, words.CLI)     # results keep the markers; each place renders them
    assert "up to date" in reason and "--force" in reason and again[0].psnr_db > 25
    assert (folder / "quantization_info.json").stat().st_mtime_ns == before
    request.force = True
    forced = run(request)
    assert forced[0].status == "done" and forced[1].status == "skipped"
    assert (folder / "quantization_info.json").stat().st_mtime_ns != before


def test_changed_check_settings_mean_the_target_is_not_up_to_date(converted, tiny_sources):
    out_dir, _ = converted
    ctx = RunContext(output_dir=out_dir, check=CheckConfig(prompts=PROMPT, steps=3, height=32, width=32))
    stages = []
    result = convert_target("flux1", "pytorch", "FP16", ctx=ctx, source_spec=str(tiny_sources["flux1"]),
                            on_stage=lambda f, s: stages.append(s))
    assert result.status == "done"
    assert read_info(out_dir / "flux1-torch-fp16")["check"]["settings"]["steps"] == 3
    assert [s for s in stages if "sampling the converted" in s], stages


def test_a_broken_source_fails_cleanly(tmp_path, broken_source):
    result = convert_target("sdxl-turbo", "pytorch", "INT8", ctx=_ctx(tmp_path), source_spec=str(broken_source))
    assert result.status == "failed" and "truncated" in result.reason and "damaged" in result.reason
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("spec,message", [
    ("{sdxl}", "holds a StableDiffusionXLPipeline pipeline, but key 'sd15' expects StableDiffusionPipeline"),
    ("./no/such/folder", "does not exist"),
    ("{empty}", "model_index.json is missing"),
])
def test_a_wrong_source_is_refused_with_its_reason(tmp_path, tiny_sources, spec, message):
    (tmp_path / "empty").mkdir()
    spec = spec.format(sdxl=tiny_sources["sdxl"], empty=tmp_path / "empty")
    result = convert_target("sd15", "pytorch", "INT8", ctx=_ctx(tmp_path), source_spec=spec)
    assert result.status == "failed" and message in result.reason


def test_a_hub_key_offline_says_the_hub_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))   # an empty cache
    result = convert_target("sdxl", "pytorch", "INT8", ctx=_ctx(tmp_path))
    assert result.status == "failed"
    assert "stabilityai/stable-diffusion-xl-base-1.0" in result.reason and "HF_HUB_OFFLINE=1" in result.reason
    assert "--source" in result.reason


def test_not_enough_memory_refuses_before_loading(tmp_path, tiny_sources, monkeypatch):
    import imgai.diffusion.resources as resources

    monkeypatch.setattr(resources, "available_ram", lambda: 64 * 1024 ** 2)
    result = convert_target("sd15", "onnx", "FP32", ctx=_ctx(tmp_path), source_spec=str(tiny_sources["sd15"]))
    assert result.status == "failed" and "of RAM" in result.reason and "64.0 MB is available" in result.reason
    assert result.seconds < 5


def test_a_check_below_the_threshold_fails_and_keeps_nothing(tmp_path, tiny_sources):
    check = CheckConfig(prompts=PROMPT, steps=2, height=32, width=32, min_psnr=250.0)
    result = convert_target("flux1", "pytorch", "INT8", ctx=_ctx(tmp_path, check=check),
                            source_spec=str(tiny_sources["flux1"]))
    assert result.status == "failed" and "failed its check" in result.reason and "below 250 dB" in result.reason
    assert result.psnr_db is not None and result.psnr_db < 250
    assert not (tmp_path / "out" / "flux1-torch-int8").exists()
    assert not [p for p in (tmp_path / "out").iterdir()], "no staging folder may stay behind"
    assert json.loads(json.dumps(result.to_dict()))["status"] == "failed"


def test_push_hands_the_finished_folder_to_imgai_hub(converted, tiny_sources, tmp_path, monkeypatch):
    """--push reuses imgai.hub.push_folder (the Hub issue's upload and verification). Here a
    stand-in records the call; the end-to-end push against the fake Hub lives with imgai.hub."""
    import shutil
    import sys
    import types
    from dataclasses import dataclass

    calls = []

    @dataclass
    class PushResult:
        url: str

    def push_folder(folder, repo_id, *, token=None, private=False, revision=None, commit_message=None):
        calls.append({"folder": folder, "repo_id": repo_id, "token": token, "private": private,
                      "commit_message": commit_message, "card": (folder / "README.md").read_text()})
        return PushResult(url=f"https://huggingface.co/{repo_id}")

    monkeypatch.setitem(sys.modules, "imgai.hub", types.SimpleNamespace(push_folder=push_folder))
    out_dir, _ = converted
    shutil.copytree(out_dir / "flux1-torch-int8", tmp_path / "out" / "flux1-torch-int8")
    ctx = _ctx(tmp_path, push="my-org", private=True)
    result = convert_target("flux1", "pytorch", "INT8", ctx=ctx, source_spec=str(tiny_sources["flux1"]))
    assert result.status == "skipped" and "up to date" in result.reason   # already made: pushed as is
    assert result.pushed_to == "https://huggingface.co/my-org/flux1-torch-int8"
    (call,) = calls
    assert call["repo_id"] == "my-org/flux1-torch-int8" and call["private"] and call["token"] is None
    assert call["folder"] == tmp_path / "out" / "flux1-torch-int8"
    assert 'from_pretrained("my-org/flux1-torch-int8"' in call["card"], "the card names the repo it lives in"
