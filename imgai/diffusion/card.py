"""The model card (`README.md`) of a converted pipeline, rendered from templates/diffusion.md.j2
through `huggingface_hub.ModelCard.from_template` with `ModelCardData` metadata.

Everything it states comes from `quantization_info.json`, so a card can be re-rendered at any
time (for instance with the repo id once the target is pushed).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..cards import render_card
from .checks import PROMPTS, CheckConfig
from .info import read_info
from .keys import get_model_key
from .resources import fmt_bytes

TEMPLATE = "diffusion.md.j2"
PLACEHOLDER_ORG = "your-username"
TITLES = {("pytorch", "INT8"): "TorchAO INT8 weight-only quantization",
          ("pytorch", "FP16"): "16-bit PyTorch (safetensors) copy",
          ("onnx", "FP32"): "ONNX FP32 export (Optimum)"}
KEY_TAGS = {"sd15": ["stable-diffusion"], "sdxl": ["stable-diffusion-xl"],
            "sdxl-turbo": ["stable-diffusion-xl", "sdxl-turbo"], "flux1": ["flux"]}


def card_metadata(info: dict) -> dict:
    backend, quantization = info["backend"], info["quantization"]
    tags = ["imgai", "text-to-image", *KEY_TAGS.get(info["key"], [])]
    if backend == "pytorch":
        tags += ["diffusers", "safetensors"]
        tags += ["torchao", "int8", "quantized"] if quantization == "INT8" else [info["dtype"].replace("float", "fp")]
    else:
        tags += ["onnx", "optimum", "onnxruntime", "fp32"]
    return {
        "base_model": info["base_model"],
        "base_model_relation": "quantized" if quantization == "INT8" else None,
        "library_name": "diffusers" if backend == "pytorch" else "onnx",
        "pipeline_tag": "text-to-image",
        "license": info["source"].get("license") or get_model_key(info["key"]).license,
        "tags": tags,
    }


def reproduce_command(info: dict) -> str:
    parts = ["imgai", "quantize", "--model", info["key"], "--backend", info["backend"],
             "--quantization", info["quantization"]]
    src = info["source"]
    if src["kind"] == "local" or src["spec"] != get_model_key(info["key"]).repo_id:
        parts += ["--source", src["repo_id"] and f"{src['repo_id']}@{src['revision']}" or src["spec"]]
    device = info.get("device", {}).get("device", "cpu")
    if info["backend"] == "pytorch":
        parts += ["--device", device]
    check = info["check"]["settings"]
    defaults = CheckConfig().resolve(get_model_key(info["key"]), info["quantization"], device)
    if check["steps"] != defaults["steps"]:
        parts += ["--check-steps", str(check["steps"])]
    if (check["height"], check["width"]) != (defaults["height"], defaults["width"]):
        parts += ["--check-size", f"{check['width']}x{check['height']}"]
    if tuple(check["prompts"]) != PROMPTS:
        for prompt in check["prompts"]:
            parts += ["--check-prompt", prompt]
    return " ".join(shlex.quote(p) for p in parts)


def device_line(info: dict) -> str:
    """Where the check ran: 'CPU, float32' or 'NVIDIA H200 (…), bfloat16, model CPU offload'."""
    device = info.get("device") or {"device": "cpu", "dtype": "float32"}
    if device["device"] != "cuda":
        return f"CPU, {device.get('dtype', 'float32')}"
    line = f"{device['name']} (CUDA {device.get('torch_cuda')}), {device['dtype']}"
    return line + (", diffusers model CPU offload" if device.get("offload") else "")


def _limitations(info: dict) -> list[str]:
    lines = []
    comps = info["components"]
    kept = [f"`{n}` ({c['note']})" for n, c in comps.items() if not c["quantized"] and info["quantization"] == "INT8"]
    if info["quantization"] == "INT8":
        lines.append("Weight-only INT8: Linear weights are stored as int8 with per-channel scales and are "
                     "dequantized on the fly; activations stay in floating point. It saves disk and memory; "
                     "on a CPU it is not faster than float32 (see the seconds per step above).")
        if kept:
            lines.append("Left in their original precision: " + "; ".join(kept) + ".")
    elif info["backend"] == "pytorch":
        lines.append(f"{info['dtype']} halves the size of float32 weights; on a CPU 16-bit arithmetic is slower "
                     "than float32, so use it on a GPU.")
    else:
        lines.append("FP32 ONNX keeps the original precision: it is as large as a float32 pipeline; it runs "
                     "with ONNX Runtime without PyTorch at inference (the scheduler still comes from diffusers).")
    check = info["check"]["settings"]
    lines.append(f"The check covers {len(check['prompts'])} prompts at {check['width']}x{check['height']} with "
                 f"{check['steps']} steps; other prompts, sizes, schedulers and step counts were not measured.")
    if info.get("warning"):
        lines.append(info["warning"])
    lines.append("Inherits every limitation, bias and license condition of the base model; read its card.")
    return lines


def render_diffusion_card(folder: Path, *, repo_id: str | None = None, info: dict | None = None):
    """Render the card for the output in `folder` (returns a `huggingface_hub.ModelCard`)."""
    info = info or read_info(folder)
    if info is None:
        raise FileNotFoundError(f"{folder} has no quantization_info.json")
    check = info["check"]
    settings = check["settings"]
    comps = info["components"]
    external = info.get("onnx", {}).get("external_data") or []
    durations = info["durations_s"]
    src = info["source"]
    source_line = (f"[{src['repo_id']}](https://huggingface.co/{src['repo_id']}) at `{src['revision'][:12]}`"
                   if src["kind"] == "hub" else f"local folder `{Path(src['spec']).name}` (content fingerprint "
                                                f"`{src['revision']}`)")
    images = sorted((folder / "check").glob("original_*.png")) if (folder / "check").is_dir() else []
    context = dict(
        info=info, target=info["target"], backend=info["backend"], quantization=info["quantization"],
        dtype=info["dtype"], pipeline=info["pipeline"], base_model=info["base_model"],
        title=TITLES[(info["backend"], info["quantization"])], warning=info.get("warning"),
        license=card_metadata(info)["license"], source_line=source_line,
        repo_id=repo_id or f"{PLACEHOLDER_ORG}/{info['target']}",
        prompt=settings["prompts"][0], check=settings,
        component_rows=[{"name": n, "dtype_before": c["dtype_before"], "dtype_after": c["dtype_after"],
                         "bytes_before": fmt_bytes(c["bytes_before"]), "bytes_after": fmt_bytes(c["bytes_after"]),
                         "note": c["note"]} for n, c in comps.items()],
        size_before=fmt_bytes(info["size"]["weights_bytes_before"]),
        size_after=fmt_bytes(info["size"]["weights_bytes_after"]),
        size_ratio=f"{info['size']['ratio']:.2f}x" if info["size"]["ratio"] else "?",
        external_data=", ".join(f"`{e}`" for e in external),
        machine=info.get("machine", {}).get("summary", "unknown"),
        device=device_line(info),
        peak_original=fmt_bytes(info["memory"].get("sampling_peak_bytes_original")),
        peak_converted=fmt_bytes(info["memory"].get("sampling_peak_bytes_converted")),
        peak_measure=info["memory"].get("sampling_peak_measure", "peak memory"),
        peak_rss=fmt_bytes(info["memory"]["peak_rss_bytes"]),
        estimate_ram=fmt_bytes(info["memory"]["estimate"]["ram_bytes"]),
        score_rows=[{"prompt": p, "seed": settings["seed"] + i, "psnr": f"{check['psnr_db'][i]:.1f}",
                     "ssim": f"{check['ssim'][i]:.4f}"} for i, p in enumerate(settings["prompts"])],
        sps_original=f"{check['seconds_per_step_original']:.4f} s",
        sps_converted=f"{check['seconds_per_step_converted']:.4f} s",
        image_rows=[{"index": i, "original": p.name, "converted": p.name.replace("original", "converted")}
                    for i, p in enumerate(images)],
        durations=", ".join(f"{k} {v:.1f} s" for k, v in durations.items()),
        limitations=_limitations(info), command=reproduce_command(info),
        versions=[(k, v) for k, v in info["versions"].items() if v and k not in ("python", "imgai")],
    )
    return render_card(TEMPLATE, card_data=card_metadata(info), **context)


def write_card(folder: Path, *, repo_id: str | None = None, info: dict | None = None) -> Path:
    card = render_diffusion_card(folder, repo_id=repo_id, info=info)
    path = Path(folder) / "README.md"
    card.save(str(path))
    return path
