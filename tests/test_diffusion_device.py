"""The converter's device rules, on the CPU: `--device cuda` without CUDA is refused with what was
found, the check's size follows the device, the VRAM plan picks resident / offload / refusal from
the figures, and running out of memory mid-job fails the target with the figures and leaves
nothing half-written (torch.OutOfMemoryError raised from a forward hook, as CUDA would raise it).
model_converter.py writes to ./converted_models/ and prints a line per stage when not a terminal.
The same paths on a real GPU: tests/test_cuda.py (marker `cuda`)."""

from __future__ import annotations

import re

import pytest

import model_converter
from imgai.devices import resolve_device, resolve_precision
from imgai.diffusion import MODEL_KEYS, CheckConfig, QuantizeRequest
from imgai.diffusion.keys import CPU_CHECK
from imgai.diffusion.resources import GB, VRAM_OVERHEAD, plan_vram
from imgai.diffusion.source import Component, Source
from imgai.diffusion.targets import RunContext, convert_target
from imgai.errors import ConfigError, InsufficientResourcesError
from tests.diffusion_fixtures import CHECK, tiny_sources  # noqa: F401 (fixtures)

PROMPT = ("a photo of the cat",)
no_cuda = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")


@no_cuda
def test_cuda_without_cuda_is_refused_naming_what_was_found(imgai_home, cli):
    with pytest.raises(ConfigError) as exc:
        QuantizeRequest(model="sd15", device="cuda")
    message = str(exc.value)
    assert "CUDA was asked for, but" in message and "torch" in message and "--device cpu" in message
    assert resolve_device("auto") == "cpu" and QuantizeRequest(model="sd15").resolved_device == "cpu"
    code, out, err = cli("quantize", "--model", "sd15", "--device", "cuda")
    assert code == 1 and "CUDA was asked for" in err and "--device cpu" in err
    from imgai import jobs

    assert not jobs.list_jobs(kind="quantize"), "a refused request must queue nothing"


def test_precision_rules_on_a_cpu():
    assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="'int4' is not one of auto, fp32, bf16, fp16"):
        resolve_precision("int4", "cpu")


@pytest.mark.parametrize("key", list(MODEL_KEYS))
def test_the_check_is_small_on_a_cpu_full_on_cuda_and_flags_override(key):
    model_key = MODEL_KEYS[key]
    cpu = CheckConfig().resolve(model_key, "INT8", "cpu")
    assert (cpu["width"], cpu["height"]) == (min(model_key.check.width, CPU_CHECK.size),) * 2
    assert cpu["steps"] == min(model_key.check.steps, CPU_CHECK.max_steps)
    assert "CPU default" in cpu["defaults"]                      # said in quantization_info.json
    cuda = CheckConfig().resolve(model_key, "INT8", "cuda")
    assert (cuda["steps"], cuda["height"], cuda["width"]) == (model_key.check.steps, model_key.check.height,
                                                              model_key.check.width)
    assert "defaults" not in cuda
    given = CheckConfig(steps=7, height=64, width=96).resolve(model_key, "INT8", "cpu")
    assert (given["steps"], given["height"], given["width"]) == (7, 64, 96) and "defaults" not in given


def _source(**params) -> Source:
    comps = {name: Component(name, "diffusers", "X", {"BF16": n}, 2 * n) for name, n in params.items()}
    return Source(spec="x", kind="local", path=None, revision="r", repo_id=None, base_model="b", license=None,
                  pipeline_class="FluxPipeline", components=comps)


def test_vram_plan_resident_offload_or_refusal_with_the_figures():
    source = _source(transformer=12 * 10**9, text_encoder_2=5 * 10**9, vae=10**8)   # FLUX-sized, 2 bytes each
    fits = plan_vram(source, dtype_bytes=2, dtype="bfloat16", free=140 * GB, total=141 * GB, target="flux1")
    assert fits.mode == "resident" and fits.resident_bytes > 34 * 10**9
    tight = plan_vram(source, dtype_bytes=2, dtype="bfloat16", free=30 * GB, total=32 * GB, target="flux1")
    assert tight.mode == "model_cpu_offload" and "largest: transformer" in tight.note
    assert tight.offload_bytes < 30 * GB < tight.resident_bytes
    with pytest.raises(InsufficientResourcesError) as exc:
        plan_vram(source, dtype_bytes=2, dtype="bfloat16", free=16 * GB, total=16 * GB, target="flux1-torch-int8")
    message = str(exc.value)
    assert "flux1-torch-int8 needs about" in message and "16.0 GB free of 16.0 GB" in message
    assert "--device cpu" in message and "(transformer)" in message
    forced = plan_vram(source, dtype_bytes=2, dtype="bfloat16", free=16 * GB, total=16 * GB, target="f", force=True)
    assert forced.mode == "model_cpu_offload" and forced.offload_bytes > VRAM_OVERHEAD


def test_out_of_memory_mid_job_fails_the_target_with_figures_and_writes_nothing(tmp_path, tiny_sources):
    """The converted pipeline's first denoising step raises torch.OutOfMemoryError (after the original
    was sampled and the INT8 weights were written to the staging folder)."""
    import torch
    from diffusers import FluxTransformer2DModel

    calls = []

    def exhausted(module, args):
        if isinstance(module, FluxTransformer2DModel):
            calls.append(1)
            if len(calls) > 2:     # the original's two steps pass; the converted pipeline's first fails
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    out = tmp_path / "out"
    handle = torch.nn.modules.module.register_module_forward_pre_hook(exhausted)
    stages = []
    try:
        result = convert_target("flux1", "pytorch", "INT8",
                                ctx=RunContext(output_dir=out, check=CheckConfig(prompts=PROMPT, steps=2, height=32,
                                                                                 width=32)),
                                source_spec=str(tiny_sources["flux1"]), on_stage=lambda f, t: stages.append(t))
    finally:
        handle.remove()
    assert len(calls) == 3 and result.status == "failed"
    assert result.reason.startswith("flux1-torch-int8: sampling the converted pipeline ran out of CPU memory")
    assert "Tried to allocate 20.00 GiB" in result.reason and "To fix:" in result.reason
    assert "offload" in result.reason and "--check-size" in result.reason
    assert sorted(p.name for p in out.iterdir()) == [], "nothing half-written: no staging folder, no output"


def test_model_converter_writes_to_the_working_folder_a_line_per_stage(imgai_home, tiny_sources, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = model_converter.main(["--model", "sdxl-turbo", "--backend", "pytorch", "--quantization", "FP16",
                                 "--source", str(tiny_sources["sdxl-turbo"]), *CHECK,
                                 "--check-prompt", PROMPT[0], "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (tmp_path / "converted_models" / "sdxl-turbo-torch-fp16" / "quantization_info.json").is_file()
    assert not (imgai_home / "converted_models").exists()
    lines = [line for line in captured.err.splitlines() if re.match(r"^ *\d+% ", line)]   # a line per stage
    assert "\r" not in captured.err and len(lines) == len(set(lines)) >= 4, captured.err
    assert any("sdxl-turbo-torch-fp16: casting to FP16" in line for line in lines)
    assert any(line.endswith("1 done, 0 skipped, 0 failed") for line in lines)


def test_the_quantize_tab_passes_its_device_choice(imgai_home):
    from imgai.presentation.quantize import plan_text, quantize_request

    form = (["sd15"], "", "pytorch", "INT8", False, 0, "", "", False)
    assert quantize_request(*form, "cpu").resolved_device == "cpu"
    assert "device cpu" in plan_text(*form, "cpu")
    if not __import__("torch").cuda.is_available():
        from imgai import words

        with words.speaking(words.UI):      # the app's words: its Device field, no CLI flag
            plan = words.plain(plan_text(*form, "cuda"))
        assert "CUDA was asked for" in plan and "cpu in the Device field" in plan and "--device" not in plan
