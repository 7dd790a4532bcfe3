"""The original ImageAI Server converter's entry point, kept for its users:

    python model_converter.py --model sd15 --backend pytorch --quantization INT8
    python model_converter.py --model all  --backend both    --quantization FP32

A thin shim over `imgai quantize … --wait` (same flags, plus every option of that command). As the
original tool did, it writes to ./converted_models/ in the working folder unless --output-dir says
otherwise (`imgai quantize` keeps its data-folder default), and prints a line per stage when its
output is not a terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_OUTPUT = "converted_models"     # the original tool's folder, in the working folder


def main(argv: list[str] | None = None) -> int:
    from imgai.cli import main as imgai_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--wait" not in args and "--list" not in args:
        args.append("--wait")
    if "--list" not in args and not any(a == "--output-dir" or a.startswith("--output-dir=") for a in args):
        args += ["--output-dir", str(Path.cwd() / DEFAULT_OUTPUT)]
    return imgai_main(["quantize", *args])


if __name__ == "__main__":
    sys.exit(main())
