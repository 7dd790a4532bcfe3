#!/usr/bin/env bash
# Every GPU check in one run (≤ 8 minutes on an H200): the CUDA tests, then both benchmarks on CUDA.
#
#   bash bench/gpu_check.sh [WHEELS]        # WHEELS: folder of carried wheels (default ./.whl)
#
# The GPU machine has torch, timm, transformers 5.x and huggingface_hub 1.x but no diffusers,
# torchao or accelerate: their wheels (and pytest's, psutil's when missing) travel in WHEELS
# (`make gpu-wheels`: pip download --no-deps -d .whl diffusers==0.39.0 torchao==0.18.0 accelerate==1.15.0 pytest==8.4.2
# pluggy iniconfig psutil`) and are unpacked with `pip install --no-deps --target` into a folder put
# first on PYTHONPATH; imgai runs from this source tree (PYTHONPATH), never installed.
# Output goes to stdout and to $OUT/gpu_check.log when $OUT is set.
# Each step has its own time limit, so the script always ends with its summary.
set -u
cd "$(dirname "$0")/.."
WHEELS="${1:-./.whl}"
PY="${PYTHON:-python3}"
LOG="${OUT:-/tmp}/gpu_check.log"
SITE="${TMPDIR:-/tmp}/imgai-gpu-site"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 IMGAI_NO_DEMO=1 TOKENIZERS_PARALLELISM=false
exec > >(tee "$LOG") 2>&1
START=$(date +%s)
status=()

step() {   # step NAME SECONDS COMMAND...: run with a time limit, record ok / failed / timed out
  local name=$1 limit=$2; shift 2
  echo; echo "=== $name (limit ${limit}s, at $(( $(date +%s) - START ))s)"
  timeout --kill-after=10 "$limit" "$@"; local rc=$?
  case $rc in 0) status+=("$name: ok");; 124|137) status+=("$name: TIMED OUT after ${limit}s");;
              *) status+=("$name: FAILED (exit $rc)");; esac
}

echo "=== machine"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader || true
"$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("torch", "torchvision", "timm", "transformers", "huggingface_hub", "tokenizers", "safetensors"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:
        print(name, "MISSING", exc)
import torch
print("cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
EOF

echo; echo "=== carried wheels from $WHEELS → $SITE (first on PYTHONPATH; the machine's environment is left alone)"
rm -rf "$SITE" && mkdir -p "$SITE"
shopt -s nullglob
wheels=("$WHEELS"/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then echo "no wheels in $WHEELS"; exit 1; fi
"$PY" -m pip install -q --no-deps --disable-pip-version-check --no-compile --target "$SITE" "${wheels[@]}" \
  || { echo "pip could not unpack the wheels: stopping"; exit 1; }
printf 'installed %s\n' "${wheels[@]##*/}"
"$PY" -c "import diffusers, torchao, accelerate, pytest; print('diffusers', diffusers.__version__, 'torchao', torchao.__version__, 'accelerate', accelerate.__version__)" \
  || { echo "the carried packages do not import: stopping"; exit 1; }

step "CUDA tests (pytest -m cuda)" 160 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py -rA
step "train bench --device cuda" 120 "$PY" bench/train_overhead.py --device cuda
step "quantize bench --device cuda" 180 "$PY" bench/quantize.py --device cuda

echo; echo "=== summary ($(( $(date +%s) - START ))s)"
printf '%s\n' "${status[@]}"
case "${status[*]}" in *FAILED*|*"TIMED OUT"*) exit 1;; esac
