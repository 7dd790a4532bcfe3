"""The original ImageAI Server converter's entry point, kept for its users:

    python model_converter.py --model sd15 --backend pytorch --quantization INT8
    python model_converter.py --model all  --backend both    --quantization FP32

A thin shim over `imgai quantize … --wait` (same flags, plus every option of that command).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from imgai.cli import main as imgai_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--wait" not in args and "--list" not in args:
        args.append("--wait")
    return imgai_main(["quantize", *args])


if __name__ == "__main__":
    sys.exit(main())
