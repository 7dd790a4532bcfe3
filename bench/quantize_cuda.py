"""Diffusion conversion on a GPU: a ~1 B-parameter FLUX-like transformer and an SD 1.5-sized UNet
(860 M), built from config with random bf16 weights (seeded), each in a small pipeline (small text
encoders and VAE), converted to TorchAO INT8 by the code `imgai quantize --device cuda` runs, and
checked against the bf16 original on the GPU.

Run through `python bench/quantize.py --device cuda [--quick]`. Per model: denoiser size on disk
(bf16 → INT8), the denoiser's weights in GPU memory (torch.cuda.memory_allocated, loaded alone),
the peak GPU memory while sampling the check, seconds per denoising step (CUDA-synchronised,
median), and PSNR / SSIM of the INT8 images against the bf16 ones. Targets: INT8 GPU memory
≤ 0.55× bf16, PSNR ≥ 35 dB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quantize import KEY_OF, headline, measure_each, print_columns

LABEL = {"sd": "SD 1.5-sized UNet", "flux": "FLUX-like transformer (~1B)"}
BUILD_ON = "cuda"       # where the denoisers are initialised (fast there); a CPU dry run of the builders sets "cpu"


def build_flux(folder: Path, quick: bool) -> None:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    from tests.diffusion_factories import clip_text_config, clip_tokenizer, t5_encoder, t5_tokenizer, vae

    tokenizer, tokenizer_2 = clip_tokenizer(folder.parent / "work"), t5_tokenizer(max_length=256)
    torch.manual_seed(0)
    with torch.device(BUILD_ON):      # FLUX.1's width (24 heads x 128), 2 double + 2 single blocks: ~1 B
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1 if quick else 2, num_single_layers=1 if quick else 2,
            attention_head_dim=128, num_attention_heads=12 if quick else 24, joint_attention_dim=512,
            pooled_projection_dim=256, axes_dims_rope=[16, 56, 56]).to(torch.bfloat16)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(len(tokenizer), hidden=256, layers=4, projection=256))
    text_encoder_2 = t5_encoder(len(tokenizer_2), d_model=512, layers=4, heads=8, d_kv=64)
    pipe = FluxPipeline(transformer=transformer, vae=vae(latent_channels=16, blocks=(32, 64, 64, 64),
                                                         scaling_factor=0.3611, shift_factor=0.1159,
                                                         use_quant_conv=False, use_post_quant_conv=False),
                        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                        tokenizer_2=tokenizer_2, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0))
    pipe.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)


def build_sd(folder: Path, quick: bool) -> None:
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from tests.diffusion_factories import clip_text_config, clip_tokenizer, vae

    tokenizer = clip_tokenizer(folder.parent / "work")
    torch.manual_seed(0)
    with torch.device(BUILD_ON):      # SD 1.5's UNet config (quick: half the width)
        unet = UNet2DConditionModel(block_out_channels=(160, 320, 640, 640) if quick else (320, 640, 1280, 1280),
                                    layers_per_block=2, cross_attention_dim=768, attention_head_dim=8,
                                    sample_size=64).to(torch.bfloat16)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(len(tokenizer), hidden=768, layers=4, projection=768))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae(blocks=(32, 64, 64, 64)), text_encoder=text_encoder,
                                   tokenizer=tokenizer, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    pipe.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)


def weights_in_gpu_memory(folder: Path, component: str, dtype: str) -> int:
    """Bytes torch allocates on the GPU for one component alone (loaded as its card says)."""
    import gc
    import json as json_

    import diffusers
    import torch

    class_name = json_.loads((folder / "model_index.json").read_text())[component][1]
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    model = getattr(diffusers, class_name).from_pretrained(str(folder / component),
                                                           torch_dtype=getattr(torch, dtype)).to("cuda")
    torch.cuda.synchronize()
    used = torch.cuda.memory_allocated() - before
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return int(used)


def measure(model: str, workdir: Path, quick: bool) -> dict:
    import torch

    from imgai.diffusion.checks import CheckConfig
    from imgai.diffusion.info import read_info
    from imgai.diffusion.keys import MODEL_KEYS
    from imgai.diffusion.targets import RunContext, convert_target

    source = workdir / f"src-{model}"
    (build_sd if model == "sd" else build_flux)(source, quick)
    torch.cuda.empty_cache()
    size = 256 if quick else 512
    key = KEY_OF[model]
    ctx = RunContext(output_dir=workdir / "out", force=True, device="cuda",
                     check=CheckConfig(steps=4, height=size, width=size))
    result = convert_target(key, "pytorch", "INT8", ctx=ctx, source_spec=str(source))
    if result.status != "done":
        raise SystemExit(f"{result.name}: {result.status}: {result.reason}")
    info = read_info(Path(result.path))
    denoiser = MODEL_KEYS[key].denoiser
    den = info["components"][denoiser]
    dtype = info["device"]["dtype"]
    gpu_bf16 = weights_in_gpu_memory(source, denoiser, dtype)
    gpu_int8 = weights_in_gpu_memory(Path(result.path), denoiser, dtype)
    check, memory = info["check"], info["memory"]
    return {
        "model": model, "denoiser_params_m": round(den["params"] / 1e6, 1), "dtype": dtype,
        "disk_before_mb": round(den["bytes_before"] / 2**20, 1), "disk_after_mb": round(den["bytes_after"] / 2**20, 1),
        "gpu_weights_before_mb": round(gpu_bf16 / 2**20, 1), "gpu_weights_after_mb": round(gpu_int8 / 2**20, 1),
        "gpu_weights_ratio": round(gpu_int8 / gpu_bf16, 3),
        "peak_sampling_before_mb": round(memory["sampling_peak_bytes_original"] / 2**20, 1),
        "peak_sampling_after_mb": round(memory["sampling_peak_bytes_converted"] / 2**20, 1),
        "s_per_step_before": check["seconds_per_step_original"], "s_per_step_after": check["seconds_per_step_converted"],
        "psnr_db": check["min_psnr_db"], "ssim": min(check["ssim"]), "offload": info["device"]["offload"],
        "image": f"{size}x{size}", "gpu": info["device"]["name"], "convert_s": info["durations_s"]["convert"],
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="quantize.py --device cuda", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half-width models, 256x256 images")
    parser.add_argument("--measure", choices=list(KEY_OF), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.workdir, args.quick)))
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    rows = measure_each(("flux", "sd"), ["--device", "cuda"] + (["--quick"] if args.quick else []))
    first = next(iter(rows.values()))
    print(f"{first['gpu']}, {first['dtype']} original vs TorchAO INT8 weight-only; check: 2 prompts x 4 steps at "
          f"{first['image']}; s/step: median, CUDA-synchronised; random weights (seeded)")
    lines = [("", *(LABEL[m] for m in rows)),
             ("denoiser parameters", *(f"{r['denoiser_params_m']}M" for r in rows.values())),
             ("denoiser on disk", *(f"{r['disk_before_mb']} → {r['disk_after_mb']} MB" for r in rows.values())),
             ("denoiser weights in GPU memory", *(f"{r['gpu_weights_before_mb']} → {r['gpu_weights_after_mb']} MB "
                                                  f"({r['gpu_weights_ratio']:.2f}x)" for r in rows.values())),
             ("peak GPU memory sampling the check", *(f"{r['peak_sampling_before_mb']} → {r['peak_sampling_after_mb']} MB"
                                                      for r in rows.values())),
             ("s/step original → INT8", *(f"{r['s_per_step_before']:.4f} → {r['s_per_step_after']:.4f}"
                                          for r in rows.values())),
             ("PSNR INT8 vs original (SSIM)", *(f"{r['psnr_db']:.1f} dB ({r['ssim']:.4f})" for r in rows.values())),
             ("quantize + save (s)", *(f"{r['convert_s']:.1f}" for r in rows.values()))]
    print_columns(lines)
    print(headline(rows, {"gpu_weights_ratio": "gpu_weights_ratio", "psnr_db": "psnr_db",
                          "s_per_step_bf16": "s_per_step_before", "s_per_step_int8": "s_per_step_after"},
                   prefix="cuda_"))
