#!/usr/bin/env bash
# The GPU figures of issue 9 (docs/RESULTS.md section 6): one fold of the `paper` preset on RAVDESS AM and
# a full-width (ResNet-18, width 64) FER2013 pretraining, timed on a lent GPU.
#
# The device tool copies at most 64 MiB per call, and the repository alone is ~51 MiB (docs/results), so
# the data travel in two calls, each with a trimmed tree (`trim`: docs/, tests/ and the bundled model
# files leave the git index for the call; `untrim` puts them back, the files never leave the disk):
#
#   here:   bash tools/gpu_check.sh pack ../shared/data   # .dev/fer (62 MB zip), .dev/am (FLAC, 51 MB)
#           bash tools/gpu_check.sh trim
#   device: bash tools/gpu_check.sh fer           (carry .dev/fer)   -> $OUT/fer_{history,metrics}.json, fer.log
#   device: bash tools/gpu_check.sh am SECONDS    (carry .dev/am)    -> $OUT/am_{history,metrics,config}.json
#   here:   bash tools/gpu_check.sh untrim
#
# `pack` re-encodes the 16 kHz RAVDESS FLAC files at FLAC's highest compression level: lossless (the
# samples are compared), 20 % smaller, which is what lets them travel with the code. The device has no
# soundfile, so its wheel (and cffi's) travel too; everything else mrpn needs is in the device's image.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: gpu_check.sh pack DATA | trim | untrim | fer | am SECONDS}
TRIM=(docs tests src/mrpn/assets/demo-init.safetensors src/mrpn/assets/mrpn-default.safetensors)

# DEV, FER_EXTRA and AM_EXTRA exist for a smoke run of the same steps on a CPU
DEV=${DEV:-cuda}; OUT=${OUT:-/tmp/gpu_check_out}; mkdir -p "$OUT"
read -r -a fer_extra <<< "${FER_EXTRA:-}"; read -r -a am_extra <<< "${AM_EXTRA:-}"
mrpn() { python3 -c 'import sys; from mrpn.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
device_env() {
    if [ "$1" = am ] && ! python3 -c 'import soundfile' 2>/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .dev/am/whl/*.whl
    fi
    export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" || true
    python3 -c 'import torch, os; print("torch", torch.__version__, "cuda", torch.version.cuda, "cores", os.cpu_count())' \
        | tee -a "$OUT/gpu.txt"
}

case $what in
pack)
    data=${2:?usage: gpu_check.sh pack ../shared/data}
    grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo '/.dev/' >> .git/info/exclude
    mkdir -p .dev/fer .dev/am
    # stored, not deflated (JPEGs do not shrink): one file instead of 35,887 small ones
    python3 - "$data" .dev/fer/fer2013.zip <<'EOF'
import os, sys, zipfile
data, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_STORED) as z:
    for d, _, files in sorted(os.walk(os.path.join(data, "fer2013"))):
        for f in sorted(files):
            z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), data))
os.replace(out + ".tmp", out)
EOF
    python3 - "$data/ravdess/audio16k" .dev/am/audio16k <<'EOF'
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
n = before = after = 0
for f in sorted(src.rglob("*.flac")):
    out = dst / f.relative_to(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    x, rate = sf.read(f, dtype="int16", always_2d=True)
    sf.write(out, x, rate, format="FLAC", subtype=sf.info(f).subtype, compression_level=1.0)
    if not np.array_equal(sf.read(out, dtype="int16", always_2d=True)[0], x):
        raise SystemExit(f"{out}: re-encoding changed the samples")
    n, before, after = n + 1, before + f.stat().st_size, after + out.stat().st_size
print(f"{n} FLAC files re-encoded losslessly: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
EOF
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .dev/am/whl soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
    du -sb .dev/fer .dev/am ;;
trim)
    git rm -r -q --cached "${TRIM[@]}"
    for p in "${TRIM[@]}"; do echo "/$p" >> .git/info/exclude; done
    echo "trimmed: $(git ls-files -z | xargs -0 du -cb | tail -1)" ;;
untrim)
    for p in "${TRIM[@]}"; do grep -vxF "/$p" .git/info/exclude > .git/info/exclude.new || true
        mv .git/info/exclude.new .git/info/exclude; done
    git reset -q -- "${TRIM[@]}"
    git status --short | head ;;
fer)
    device_env fer
    python3 -c 'import zipfile; zipfile.ZipFile(".dev/fer/fer2013.zip").extractall("/tmp")'
    # the CPU recipe of docs/results/fer2013/facecnn_w24_e25 with the paper's extractor at full width
    set +e
    timeout -s TERM "${2:-240}" python3 -c 'import sys; from mrpn.cli import main; sys.exit(main(sys.argv[1:]))' \
        pretrain visual /tmp/fer2013 --out /tmp/fer_r18w64 --extractor resnet18 --width 64 --epochs 25 \
        --device "$DEV" --precision bf16 --cache /tmp/fercache "${fer_extra[@]}" 2>&1 | tee "$OUT/fer.log"
    set -e
    cp /tmp/fer_r18w64/history.json "$OUT/fer_history.json"
    cp /tmp/fer_r18w64/metrics.json "$OUT/fer_metrics.json" 2>/dev/null || echo "no metrics.json: stopped early" ;;
am)
    device_env am
    budget=${2:?seconds for training}
    t0=$SECONDS
    mrpn prepare ravdess .dev/am/audio16k --modality audio --out /tmp/cache --workers 16 2>&1 | tail -3
    args=(cv --dataset ravdess --cache /tmp/cache --model am --preset paper --name am_paper --out /tmp/runs
          --folds 1 --device "$DEV" --quiet --set data.workers=12 "${am_extra[@]}")
    left=$((budget - (SECONDS - t0) - 45))   # 45 s kept for the final evaluation
    set +e
    timeout -s TERM "$left" python3 -c 'import sys; from mrpn.cli import main; sys.exit(main(sys.argv[1:]))' \
        "${args[@]}" 2>&1 | tee "$OUT/am.log"
    set -e
    f=/tmp/runs/am_paper/fold_01
    if [ ! -f $f/metrics.json ]; then   # stopped by the budget: evaluate the best epoch so far
        k=$(python3 -c "import json; print(len(json.load(open('$f/history.json'))))")
        echo "budget reached after $k epochs: evaluating the best of them" | tee -a "$OUT/am.log"
        mrpn "${args[@]}" --set train.epochs="$k" 2>&1 | tee -a "$OUT/am.log"
    fi
    cp $f/history.json "$OUT/am_history.json"; cp $f/metrics.json "$OUT/am_metrics.json"
    cp $f/config.json "$OUT/am_config.json" ;;
*)
    echo "unknown step $what" >&2; exit 2 ;;
esac
