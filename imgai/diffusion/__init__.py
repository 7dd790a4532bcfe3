"""Publishing diffusion models: TorchAO INT8 / 16-bit PyTorch and Optimum ONNX FP32 conversions of
sd15, sdxl, sdxl-turbo and flux1, each checked against the original and described by a card.

    from imgai.diffusion import QuantizeRequest, run, convert
    run(QuantizeRequest(model="all", backend="both", quantization="INT8"))

Heavy libraries (torch, diffusers, torchao, optimum) are imported only when a conversion runs.
"""

from .checks import CheckConfig
from .keys import BACKENDS, MODEL_KEYS, QUANTIZATIONS, get_model_key, skip_reason, support_table, target_name
from .matrix import QuantizeRequest, convert, parse_sources, plan, run, summary_rows
from .targets import TargetResult

__all__ = ["BACKENDS", "MODEL_KEYS", "QUANTIZATIONS", "CheckConfig", "QuantizeRequest", "TargetResult", "convert",
           "get_model_key", "parse_sources", "plan", "run", "skip_reason", "summary_rows", "support_table",
           "target_name"]
