"""What this installation can do: the first thing to paste into a bug report (`imgai doctor`).

Conversion needs torch, onnx and the exporter; tagging needs only onnxruntime, numpy, Pillow.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field

from .config import paths

CONVERT_NEEDS = {"torch": "torch", "onnx": "onnx", "optimum.exporters.onnx": "optimum-onnx",
                 "timm": "timm", "transformers": "transformers", "safetensors": "safetensors"}
TAG_NEEDS = {"onnxruntime": "onnxruntime", "numpy": "numpy", "PIL": "pillow"}
REPORTED = ["imgai", "torch", "torchvision", "torchao", "diffusers", "transformers", "huggingface_hub",
            "optimum", "optimum-onnx", "onnx", "onnxruntime", "timm", "gradio", "numpy", "pillow"]


@dataclass
class EnvironmentReport:
    python: str
    platform: str
    versions: dict[str, str | None]
    can_tag: bool
    can_convert: bool
    missing_for_tag: list[str] = field(default_factory=list)
    missing_for_convert: list[str] = field(default_factory=list)
    onnxruntime_providers: list[str] = field(default_factory=list)
    data_folder: str = ""
    free_disk_gb: float = 0.0
    hub: str = "not checked"
    cpu: dict = field(default_factory=dict)     # imgai.cpu.CpuInfo: SIMD, FMA units, VNNI/AMX, peaks

    @property
    def convert_hint(self) -> str:
        if self.can_convert:
            return ""
        return (f"conversion needs {', '.join(self.missing_for_convert)}: "
                "install with `pip install -r requirements.txt`")

    def to_dict(self) -> dict:
        return asdict(self)


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def hub_status(timeout: float = 3.0) -> str:
    """'reachable', 'offline (HF_HUB_OFFLINE)' or 'unreachable: …', within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return "offline (HF_HUB_OFFLINE is set)"
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        with urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout):
            return "reachable"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__}: {str(exc)[:80]})"


def check_environment(*, check_hub: bool = False) -> EnvironmentReport:
    missing_convert = sorted({pkg for mod, pkg in CONVERT_NEEDS.items() if not _present(mod)})
    missing_tag = sorted({pkg for mod, pkg in TAG_NEEDS.items() if not _present(mod)})
    providers = []
    if "onnxruntime" not in missing_tag:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    from .cpu import cpu_info

    home = paths().home
    return EnvironmentReport(
        python=sys.version.split()[0], platform=platform.platform(),
        versions={d: _version(d) for d in REPORTED},
        can_tag=not missing_tag, can_convert=not missing_convert,
        missing_for_tag=missing_tag, missing_for_convert=missing_convert,
        onnxruntime_providers=providers, data_folder=str(home),
        free_disk_gb=round(shutil.disk_usage(home).free / 1024**3, 1),
        hub=hub_status() if check_hub else "not checked", cpu=cpu_info().to_dict(),
    )
