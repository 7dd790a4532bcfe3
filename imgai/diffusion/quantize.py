"""The PyTorch backend: INT8 weight-only with TorchAO, or a 16-bit copy, saved as safetensors.

INT8 goes through diffusers' `PipelineQuantizationConfig` with a `TorchAoConfig(Int8WeightOnlyConfig())`
per component (diffusers' config for the denoiser, transformers' for the text encoders). A
component whose quantized form its library cannot save as safetensors is left in its stored
precision, and the report says so: every weight file imgai writes is safetensors.

Loading an INT8 output needs `torch_dtype=torch.float32` on a CPU (without it diffusers turns
the other layers into bfloat16). On CUDA everything loads in the GPU's 16-bit dtype (bfloat16, or
float16 without it) and is quantized where it lands (`device_map="cuda"`), unless the pipeline
does not fit and runs with diffusers' model CPU offload (one component on the GPU at a time).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConversionError
from .keys import DiffusionModelKey
from .source import Source

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


@dataclass
class ConversionReport:
    """What a backend did, per component, for quantization_info.json and the card."""
    dtype: str                                   # the working dtype of the output (float32, float16, …)
    components: dict = field(default_factory=dict)   # name → {"quantized": bool, "note": str}
    config: dict = field(default_factory=dict)       # torchao / optimum settings
    load_dtype: str = "float32"                  # the torch_dtype to pass when loading the output


@dataclass(frozen=True)
class Placement:
    """Where a pipeline is loaded and sampled, in which dtype."""
    device: str = "cpu"          # cpu | cuda
    dtype: str = "float32"       # the working dtype there: float32 on a CPU, bfloat16/float16 on CUDA
    offload: bool = False        # CUDA: diffusers' enable_model_cpu_offload instead of the whole pipeline

    def place(self, pipe):
        if self.device == "cuda":
            if self.offload:
                pipe.enable_model_cpu_offload()
            else:
                pipe.to("cuda")
        return pipe

    @property
    def quantize_on_device(self) -> bool:
        return self.device == "cuda" and not self.offload


CPU = Placement()


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def source_dtypes(source: Source) -> dict[str, str]:
    """Each weighted component's stored dtype (float32 when unknown)."""
    return {c.name: (c.dtype if c.dtype in ("float32", "float16", "bfloat16") else "float32")
            for c in source.weight_components}


def sixteen_bit_dtype(source: Source, model_key: DiffusionModelKey) -> str:
    """FP16, or bfloat16 where the source's denoiser is stored in bfloat16 (FLUX.1)."""
    return "bfloat16" if source.components[model_key.denoiser].dtype == "bfloat16" else "float16"


@contextmanager
def _quiet(*loggers: str):
    saved = [(name, logging.getLogger(name).level) for name in loggers]
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved:
            logging.getLogger(name).setLevel(level)


def int8_mapping(model_key: DiffusionModelKey, source: Source) -> tuple[dict, dict]:
    """The per-component TorchAO configs, and why any text encoder is left out."""
    import transformers
    from diffusers import TorchAoConfig as DiffusersTorchAoConfig
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import TorchAoConfig as TransformersTorchAoConfig
    from transformers.quantizers.auto import AutoHfQuantizer

    mapping = {model_key.denoiser: DiffusersTorchAoConfig(Int8WeightOnlyConfig())}
    left_out = {}
    for name in model_key.text_encoders:
        if name not in source.components or not source.components[name].has_weights:
            continue
        config = TransformersTorchAoConfig(Int8WeightOnlyConfig())
        with _quiet("transformers"):
            can_save = _transformers_can_save(AutoHfQuantizer.from_config(config))
        if can_save:
            mapping[name] = config
        else:
            left_out[name] = (f"transformers {transformers.__version__} cannot save TorchAO "
                              "Int8WeightOnlyConfig weights as safetensors, so it stays in its original "
                              f"precision ({source.components[name].dtype})")
    return mapping, left_out


def _transformers_can_save(quantizer) -> bool:
    """transformers 4.x asks `is_serializable(safe_serialization=...)`; 5.x always saves safetensors
    and takes no argument (the GPU machine runs 5.x, the pinned set 4.57)."""
    try:
        return bool(quantizer.is_serializable(safe_serialization=True))
    except TypeError:
        return bool(quantizer.is_serializable())


def write_int8(source: Source, model_key: DiffusionModelKey, out: Path, placement: Placement = CPU
               ) -> ConversionReport:
    import torch
    from diffusers import DiffusionPipeline, PipelineQuantizationConfig
    from torchao.core.config import config_to_dict
    from torchao.quantization import Int8WeightOnlyConfig

    mapping, left_out = int8_mapping(model_key, source)
    if placement.device == "cuda":      # every component in the GPU's 16-bit dtype
        load = {"torch_dtype": torch_dtype(placement.dtype)}
        if placement.quantize_on_device:
            load["device_map"] = "cuda"
        kept = {c.name: placement.dtype for c in source.weight_components}
    else:                               # each component as stored, the rest float32
        kept = source_dtypes(source)
        load = {"torch_dtype": {**{n: torch_dtype(d) for n, d in kept.items()}, "default": torch.float32}}
    with _quiet("diffusers.quantizers.torchao.torchao_quantizer", "diffusers.models.modeling_utils"):
        pipe = DiffusionPipeline.from_pretrained(
            str(source.path), quantization_config=PipelineQuantizationConfig(quant_mapping=mapping), **load)
        try:
            pipe.save_pretrained(str(out), safe_serialization=True)
        except ValueError as exc:
            raise ConversionError(f"saving the INT8 pipeline as safetensors failed: {exc}") from exc
    report = ConversionReport(dtype="int8", load_dtype=placement.dtype, config={
        "method": "torchao int8 weight-only (per-channel symmetric)",
        "quantized_on": "cuda" if placement.quantize_on_device else "cpu",
        "quant_type": config_to_dict(Int8WeightOnlyConfig()),
        "diffusers_config": "PipelineQuantizationConfig(quant_mapping={component: TorchAoConfig(Int8WeightOnlyConfig())})",
        "quantized_components": sorted(mapping),
    })
    for comp in source.weight_components:
        if comp.name in mapping:
            report.components[comp.name] = {"quantized": True,
                                            "note": "Linear weights int8 (per output channel scales); other "
                                                    f"layers {kept[comp.name]}"}
        elif comp.name in left_out:
            report.components[comp.name] = {"quantized": False, "note": left_out[comp.name]}
        elif comp.name == "vae":
            report.components[comp.name] = {"quantized": False,
                                            "note": f"not quantized: kept in {kept[comp.name]} (convolution-heavy "
                                                    "and small; TorchAO weight-only targets Linear layers)"}
        else:
            report.components[comp.name] = {"quantized": False,
                                            "note": f"not quantized: kept in {kept[comp.name]} (imgai quantizes "
                                                    "the denoiser and the text encoders)"}
    del pipe
    require_safetensors_only(out)
    return report


def write_16bit(source: Source, model_key: DiffusionModelKey, out: Path) -> ConversionReport:
    from diffusers import DiffusionPipeline

    dtype = sixteen_bit_dtype(source, model_key)
    pipe = DiffusionPipeline.from_pretrained(str(source.path), torch_dtype=torch_dtype(dtype))
    pipe.save_pretrained(str(out), safe_serialization=True)
    del pipe
    report = ConversionReport(dtype=dtype, load_dtype=dtype, config={
        "method": f"cast to {dtype}", "why": ("the source's denoiser is stored in bfloat16" if dtype == "bfloat16"
                                              else "half precision")})
    for comp in source.weight_components:
        note = f"{comp.dtype} → {dtype}"
        if comp.name == "vae" and dtype == "float16":
            note += " (diffusers upcasts the VAE to float32 for decoding when its config says force_upcast)"
        report.components[comp.name] = {"quantized": False, "note": note}
    require_safetensors_only(out)
    return report


def write_pytorch(source: Source, model_key: DiffusionModelKey, quantization: str, out: Path,
                  placement: Placement = CPU) -> ConversionReport:
    if quantization == "INT8":
        return write_int8(source, model_key, out, placement)
    return write_16bit(source, model_key, out)     # a cast: the same on any device


def require_safetensors_only(folder: Path) -> None:
    """Every weight file written must be safetensors: a pickle in the output is a bug, not a warning."""
    pickles = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise ConversionError(f"refusing to publish pickle weight files {', '.join(pickles)}; "
                              "every weight file must be safetensors")


def load_pytorch_output(folder: Path, *, load_dtype: str, placement: Placement = CPU):
    """Load a written PyTorch output the way its card says to, onto the placement's device."""
    from diffusers import DiffusionPipeline

    with _quiet("diffusers.quantizers.torchao.torchao_quantizer"):
        pipe = DiffusionPipeline.from_pretrained(str(folder), torch_dtype=torch_dtype(load_dtype))
    return placement.place(pipe)


def load_original(source: Source, placement: Placement = CPU):
    """The source pipeline, the reference the check compares against: float32 on a CPU, the GPU's
    16-bit dtype on CUDA."""
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(str(source.path), torch_dtype=torch_dtype(placement.dtype))
        return placement.place(pipe)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConversionError(f"cannot load the {source.pipeline_class} from {source.spec}: "
                              f"{type(exc).__name__}: {exc}") from exc
    except RuntimeError as exc:
        from ..devices import is_out_of_memory

        if is_out_of_memory(exc):
            raise
        raise ConversionError(f"cannot load the {source.pipeline_class} from {source.spec}: "
                              f"{type(exc).__name__}: {exc}") from exc
