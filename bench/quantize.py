"""Diffusion conversion on medium models built in code: a ~100M-parameter SD-like UNet pipeline and a
~100M-parameter FLUX-like transformer pipeline (random weights, seeded), converted by the same code
`imgai quantize` runs (TorchAO INT8 and Optimum ONNX FP32), each checked against its FP32 original.

    .venv/bin/python bench/quantize.py [--quick]
    python bench/quantize.py --device cuda [--quick]     # ~1B FLUX-like + SD 1.5-sized UNet on a GPU (quantize_cuda.py)

Per model: the denoiser's INT8/FP32 size on disk, PSNR of the INT8 and ONNX images against FP32,
peak RAM of the INT8 conversion (above the process's baseline) over the FP32 pipeline's size, and
seconds per denoising step for FP32, INT8 and ONNX. Each model runs in its own process so memory
figures do not leak between them. Prints a side-by-side table; the last line holds the headline
figures as key=value pairs. Targets: FLUX-like INT8 size <= 0.30x, PSNR >= 40 dB, peak RAM <= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY_OF = {"sd": "sd15", "flux": "flux1"}
LABEL = {"sd": "SD-like UNet", "flux": "FLUX-like transformer"}


def build_sd_like(folder: Path, quick: bool) -> None:
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from tests.diffusion_factories import clip_text_config, clip_tokenizer, vae

    tokenizer = clip_tokenizer(folder.parent / "work")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(64, 128, 192, 192) if quick else (128, 256, 384, 384),
                                layers_per_block=2, cross_attention_dim=512, attention_head_dim=8, sample_size=32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(len(tokenizer), hidden=512, layers=4, projection=512))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1)
    StableDiffusionPipeline(unet=unet, vae=vae(blocks=(32, 64, 64, 64)), text_encoder=text_encoder,
                            tokenizer=tokenizer, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                            image_encoder=None, requires_safety_checker=False).save_pretrained(folder)


def build_flux_like(folder: Path, quick: bool) -> None:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    from tests.diffusion_factories import clip_text_config, clip_tokenizer, t5_encoder, t5_tokenizer, vae

    tokenizer, tokenizer_2 = clip_tokenizer(folder.parent / "work"), t5_tokenizer(max_length=256)
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=2 if quick else 4,
                                         num_single_layers=4 if quick else 12, attention_head_dim=64,
                                         num_attention_heads=8, joint_attention_dim=512, pooled_projection_dim=256,
                                         axes_dims_rope=[16, 24, 24])
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(len(tokenizer), hidden=256, layers=4, projection=256))
    text_encoder_2 = t5_encoder(len(tokenizer_2), d_model=512, layers=4, heads=8, d_kv=64)
    FluxPipeline(transformer=transformer, vae=vae(latent_channels=16, blocks=(32, 64, 64, 64), scaling_factor=0.3611,
                                                  shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False),
                 text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                 tokenizer_2=tokenizer_2, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0)).save_pretrained(folder)


def measure(model: str, workdir: Path, quick: bool) -> dict:
    """In a child process: build, convert to INT8 then ONNX, read back both quantization_info.json."""
    import diffusers  # noqa: F401  (imported before the baseline, as a running worker would have)
    import onnxruntime  # noqa: F401
    import optimum.exporters.onnx  # noqa: F401
    import torch
    import torchao  # noqa: F401

    from imgai.diffusion.checks import CheckConfig
    from imgai.diffusion.info import read_info
    from imgai.diffusion.keys import MODEL_KEYS
    from imgai.diffusion.targets import RunContext, convert_target

    source = workdir / f"src-{model}"
    (build_sd_like if model == "sd" else build_flux_like)(source, quick)
    size = 128 if quick else 256
    ctx = RunContext(output_dir=workdir / "out", force=True,
                     check=CheckConfig(steps=4, height=size, width=size))
    key = KEY_OF[model]
    results = {b: convert_target(key, b, q, ctx=ctx, source_spec=str(source))
               for b, q in (("pytorch", "INT8"), ("onnx", "FP32"))}
    for r in results.values():
        if r.status != "done":
            raise SystemExit(f"{r.name}: {r.status}: {r.reason}")
    int8, onnx = (read_info(Path(results[b].path)) for b in ("pytorch", "onnx"))
    speed = time_steps(key, source, Path(results["pytorch"].path), Path(results["onnx"].path), ctx.check)
    den = int8["components"][MODEL_KEYS[key].denoiser]
    mem = int8["memory"]
    fp32_bytes = mem["estimate"]["float32_bytes"]
    return {
        "model": model, "denoiser_params_m": round(den["params"] / 1e6, 1),
        "pipeline_fp32_mb": round(fp32_bytes / 2 ** 20, 1),
        "denoiser_fp32_mb": round(den["bytes_before"] / 2 ** 20, 1),
        "denoiser_int8_mb": round(den["bytes_after"] / 2 ** 20, 1),
        "int8_size_ratio": round(den["bytes_after"] / den["bytes_before"], 3),
        "int8_psnr_db": int8["check"]["min_psnr_db"], "int8_ssim": min(int8["check"]["ssim"]),
        "onnx_psnr_db": onnx["check"]["min_psnr_db"],
        "int8_peak_ram_ratio": round((mem["peak_rss_bytes"] - mem["baseline_rss_bytes"]) / fp32_bytes, 2),
        "onnx_peak_ram_ratio": round((onnx["memory"]["peak_rss_bytes"] - onnx["memory"]["baseline_rss_bytes"])
                                     / fp32_bytes, 2),
        "fp32_s_per_step": speed["fp32"], "int8_s_per_step": speed["int8"], "onnx_s_per_step": speed["onnx"],
        "image": f"{size}x{size}", "threads": torch.get_num_threads(),
    }


def time_steps(key: str, source: Path, int8_dir: Path, onnx_dir: Path, check, rounds: int = 3) -> dict:
    """Seconds per denoising step of the three pipelines, measured in interleaved rounds (so a busy
    shared machine slows all three alike) with denormals flushed to zero (random weights drive
    activations into denormals, which slow float32 CPU kernels ~2x; trained weights rarely do)."""
    import statistics

    import torch
    from diffusers import DiffusionPipeline

    from imgai.diffusion.checks import CheckConfig, sample
    from imgai.diffusion.keys import MODEL_KEYS
    from imgai.diffusion.onnx import load_onnx_output
    from imgai.diffusion.quantize import load_pytorch_output

    model_key = MODEL_KEYS[key]
    settings = CheckConfig(prompts=check.prompts[:1], steps=check.steps, height=check.height,
                           width=check.width).resolve(model_key, "INT8")
    pipes = {"fp32": DiffusionPipeline.from_pretrained(str(source), torch_dtype=torch.float32),
             "int8": load_pytorch_output(int8_dir, load_dtype="float32"), "onnx": load_onnx_output(onnx_dir)}
    torch.set_flush_denormal(True)
    runs: dict[str, list] = {name: [] for name in pipes}
    for _ in range(rounds):
        for name, pipe in pipes.items():
            runs[name].append(sample(pipe, settings, denoiser=model_key.denoiser).seconds_per_step)
    return {name: round(statistics.median(values), 4) for name, values in runs.items()}


def main() -> None:
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    known, rest = device.parse_known_args()
    if known.device == "cuda":
        from quantize_cuda import main as cuda_main

        return cuda_main(rest)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: INT8 vs bf16 on the GPU at ~1B parameters (bench/quantize_cuda.py)")
    parser.add_argument("--quick", action="store_true", help="smaller models and images (a smoke run)")
    parser.add_argument("--measure", choices=list(KEY_OF), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.workdir, args.quick)))
        return
    rows = measure_each(KEY_OF, ["--quick"] if args.quick else [])
    print_table(rows)
    print(headline(rows, {"int8_size_ratio": "int8_size_ratio", "int8_psnr_db": "int8_psnr_db",
                          "int8_peak_ram_ratio": "int8_peak_ram_ratio", "onnx_psnr_db": "onnx_psnr_db",
                          "s_per_step_fp32": "fp32_s_per_step", "s_per_step_int8": "int8_s_per_step",
                          "s_per_step_onnx": "onnx_s_per_step"}))


def measure_each(models, extra_args: list[str]) -> dict:
    """Each model measured by `quantize.py --measure MODEL …` in a process of its own (so memory
    figures do not leak between them); {model: the JSON its last line printed}."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix="imgai-bench-") as tmp:
        env = dict(os.environ, IMGAI_HOME=str(Path(tmp) / "home"), HF_HUB_OFFLINE="1")
        for model in models:
            work = Path(tmp) / model
            work.mkdir()
            cmd = [sys.executable, __file__, *extra_args, "--measure", model, "--workdir", str(work)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{model} failed:\n{done.stderr[-3000:]}{done.stdout[-2000:]}")
            rows[model] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def print_table(rows: dict) -> None:
    lines = [("", *(LABEL[m] for m in rows)),
             ("denoiser parameters", *(f"{r['denoiser_params_m']}M" for r in rows.values())),
             ("FP32 pipeline size", *(f"{r['pipeline_fp32_mb']} MB" for r in rows.values())),
             ("denoiser FP32 → INT8 on disk", *(f"{r['denoiser_fp32_mb']} → {r['denoiser_int8_mb']} MB "
                                                f"({r['int8_size_ratio']:.2f}x)" for r in rows.values())),
             ("PSNR INT8 vs FP32 (SSIM)", *(f"{r['int8_psnr_db']:.1f} dB ({r['int8_ssim']:.4f})" for r in rows.values())),
             ("PSNR ONNX vs FP32", *(f"{r['onnx_psnr_db']:.1f} dB" for r in rows.values())),
             ("peak RAM / FP32 size: INT8 run", *(f"{r['int8_peak_ram_ratio']:.2f}x" for r in rows.values())),
             ("peak RAM / FP32 size: ONNX export", *(f"{r['onnx_peak_ram_ratio']:.2f}x" for r in rows.values())),
             ("s/step FP32", *(f"{r['fp32_s_per_step']:.3f}" for r in rows.values())),
             ("s/step INT8 (TorchAO)", *(f"{r['int8_s_per_step']:.3f}" for r in rows.values())),
             ("s/step ONNX (onnxruntime)", *(f"{r['onnx_s_per_step']:.3f}" for r in rows.values()))]
    first = next(iter(rows.values()))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"images {first['image']}, check: 4 steps x 2 prompts; s/step: median of 3 interleaved rounds, denormals "
          f"flushed; {first['threads']} CPU threads; load average {load} (a shared machine: timings are noisy)")
    print_columns(lines)


def headline(rows: dict, fields: dict[str, str], *, prefix: str = "") -> str:
    """The last line, headline figures as key=value pairs: `{prefix}{model}_{name}={value}` for each
    model (flux first) and each name → the field of that model's row that holds it."""
    return " ".join(f"{prefix}{model}_{name}={rows[model][field]}"
                    for model in ("flux", "sd") for name, field in fields.items())


def print_columns(lines: list[tuple]) -> None:
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip())


if __name__ == "__main__":
    main()
