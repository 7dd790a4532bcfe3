"""The diffusion key table, the support matrix, requests, scores and resource estimates (no models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgai.diffusion import MODEL_KEYS, QuantizeRequest, parse_sources, plan, skip_reason, target_name
from imgai.diffusion.checks import CheckConfig, psnr, ssim
from imgai.diffusion.keys import SUPPORTED, expand_backends, expand_models
from imgai.diffusion.resources import ResourceEstimate, estimate, fmt_bytes, require_fits
from imgai.diffusion.source import Component, Source
from imgai.errors import ConfigError, InsufficientResourcesError, UnknownModelError


def test_key_table_matches_the_issue():
    assert list(MODEL_KEYS) == ["sd15", "sdxl", "sdxl-turbo", "flux1"]
    assert MODEL_KEYS["sd15"].repo_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert MODEL_KEYS["sdxl"].pipeline == MODEL_KEYS["sdxl-turbo"].pipeline == "StableDiffusionXLPipeline"
    assert MODEL_KEYS["flux1"].repo_id == "black-forest-labs/FLUX.1-schnell"
    assert MODEL_KEYS["flux1"].denoiser == "transformer" and MODEL_KEYS["flux1"].warning
    assert SUPPORTED == {"pytorch": ("FP16", "INT8"), "onnx": ("FP32",)}


@pytest.mark.parametrize("backend,quantization", [("onnx", "INT8"), ("onnx", "FP16"), ("pytorch", "FP32")])
def test_unsupported_combinations_have_a_one_line_reason(backend, quantization):
    reason = skip_reason(backend, quantization)
    assert reason and "\n" not in reason and ("FP32" in reason or "INT8" in reason)


def test_target_names_follow_the_seed_layout():
    assert target_name("sd15", "pytorch", "INT8") == "sd15-torch-int8"
    assert target_name("sdxl-turbo", "onnx", "FP32") == "sdxl-turbo-onnx-fp32"


def test_all_and_both_expand_to_the_whole_matrix():
    request = QuantizeRequest(model="all", backend="both", quantization="int8")
    targets = plan(request)
    assert request.quantization == "INT8" and len(targets) == 8
    assert [t.name for t in targets if not t.skip] == [f"{k}-torch-int8" for k in MODEL_KEYS]
    assert all("ONNX" in t.skip for t in targets if t.backend == "onnx")


def test_bad_request_values_name_the_value_and_the_fix():
    with pytest.raises(UnknownModelError, match="'sd3'.*known keys"):
        expand_models("sd3")
    with pytest.raises(ConfigError, match="'tensorrt'"):
        expand_backends("tensorrt")
    with pytest.raises(ConfigError, match="'int4'"):
        QuantizeRequest(model="sd15", quantization="int4")
    with pytest.raises(ConfigError, match="sdxl, which this run does not convert"):
        QuantizeRequest(model="sd15", sources={"sdxl": "/x"})
    with pytest.raises(ConfigError, match="Hub user or organisation"):
        QuantizeRequest(model="sd15", push="org/repo")
    with pytest.raises(ConfigError, match="multiple of 16"):
        CheckConfig(height=30)


def test_sources_take_a_key_prefix_when_several_models_run():
    assert parse_sources(["./a"], ("sd15",)) == {"sd15": "./a"}
    assert parse_sources(["sd15=./a", "flux1=org/flux"], ("sd15", "flux1")) == {"sd15": "./a", "flux1": "org/flux"}
    with pytest.raises(ConfigError, match="KEY=REPO_ID"):
        parse_sources(["./a"], ("sd15", "sdxl"))


def test_request_survives_the_job_record():
    request = QuantizeRequest(model=("sdxl", "sd15"), backend="both", quantization="FP32",
                              sources={"sd15": "/src"}, output_dir="/tmp/out", check_steps=2, check_size=(32, 32))
    again = QuantizeRequest.from_params(request.to_params())
    assert again.keys == ("sd15", "sdxl") and again.backends == ("pytorch", "onnx")
    assert again.check.resolve(MODEL_KEYS["sd15"], "FP32")["steps"] == 2
    assert again.folder == Path("/tmp/out") and again.sources == {"sd15": "/src"}


def test_psnr_and_ssim_agree_with_skimage():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((40, 48, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.02, a.shape), 0, 1).astype(np.float32)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-3)
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, channel_axis=-1, data_range=1.0), abs=1e-6)
    assert psnr(a, a) == 200.0 and ssim(a, a) == pytest.approx(1.0)
    broken = a.copy()
    broken[0, 0, 0] = np.nan   # what an fp16 overflow draws
    assert psnr(a, broken) == 0.0 and ssim(a, broken) == 0.0


def test_a_nan_image_fails_the_check():
    from imgai.diffusion.checks import Samples, compare

    good = Samples(images=[np.full((16, 16, 3), 0.5, np.float32)], seconds_per_step=0.1, seconds=1.0)
    nan = Samples(images=[np.full((16, 16, 3), np.nan, np.float32)], seconds_per_step=0.1, seconds=1.0)
    result = compare(good, nan, threshold_psnr_db=25.0)
    assert not result.passed and result.min_psnr_db == 0.0


def _fake_source(params: int, dtype: str = "F32") -> Source:
    comps = {"unet": Component("unet", "diffusers", "UNet2DConditionModel", {dtype: params}, params * 4),
             "text_encoder": Component("text_encoder", "transformers", "CLIPTextModel", {dtype: params // 8},
                                       params // 2),
             "vae": Component("vae", "diffusers", "AutoencoderKL", {dtype: params // 10}, params // 3)}
    return Source(spec="/x", kind="local", path=Path("/x"), revision="sha256:0", repo_id=None, base_model="b/m",
                  license=None, pipeline_class="StableDiffusionPipeline", components=comps)


def test_estimates_come_from_the_headers_and_refusal_names_the_sizes(tmp_path):
    source = _fake_source(3_000_000_000)   # an SDXL-sized UNet, as its safetensors header would count
    int8 = estimate(source, backend="pytorch", quantization="INT8", denoiser="unet")
    onnx = estimate(source, backend="onnx", quantization="FP32", denoiser="unet")
    assert int8.float32_bytes == (3_000_000_000 + 375_000_000 + 300_000_000) * 4
    assert int8.disk_bytes < onnx.disk_bytes and onnx.ram_bytes > int8.ram_bytes > int8.float32_bytes
    with pytest.raises(InsufficientResourcesError) as err:
        require_fits(int8, target="sdxl-torch-int8", output_dir=tmp_path, ram=8 * 1024 ** 3, disk=10 ** 12)
    message = str(err.value)
    assert "sdxl-torch-int8 needs about" in message and fmt_bytes(int8.ram_bytes) in message
    assert "8.0 GB is available" in message and "--force" in message
    with pytest.raises(InsufficientResourcesError, match="of disk"):
        require_fits(ResourceEstimate(1, 5 * 1024 ** 3, 1, 1, ""), target="t", output_dir=tmp_path, ram=10 ** 12,
                     disk=1024 ** 3)
    require_fits(int8, target="t", output_dir=tmp_path, ram=10 ** 12, disk=10 ** 12)   # fits: no error


def test_component_inventory_reads_headers_and_ignores_variants(tmp_path):
    from safetensors.numpy import save_file

    from imgai.diffusion.source import dtype_summary, inspect_component

    unet = tmp_path / "unet"
    unet.mkdir()
    save_file({"a": np.zeros((4, 8), np.float32), "b": np.zeros(16, np.int8)},
              str(unet / "diffusion_pytorch_model.safetensors"))
    save_file({"a": np.zeros((4, 8), np.float16)}, str(unet / "diffusion_pytorch_model.fp16.safetensors"))
    (unet / "config.json").write_text("{}")
    comp = inspect_component(tmp_path, "unet", ["diffusers", "UNet2DConditionModel"])
    assert comp.params_by_dtype == {"F32": 32, "I8": 16} and comp.dtype == "float32"
    assert comp.file_bytes == (unet / "diffusion_pytorch_model.safetensors").stat().st_size + 2
    assert dtype_summary(unet) == "float32 89%, int8 11%"
