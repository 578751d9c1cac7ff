#!/usr/bin/env bash
# A time-boxed training burst on a lent GPU machine (run there by the device tool).
#
# Prepare here, once per session (the data and wheels are git-ignored, carried to the device):
#   echo /.gpu/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
#   stemstream pack --data ../shared/data/musdb18-7/train --format musdb --out .gpu/musdb.npz
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl tqdm safetensors soundfile cffi pycparser soxr PyYAML
#   to resume an earlier burst: cp -r runs/gpu-musdb4 .gpu/run   (checkpoint.pt is < 16 MiB)
# Then: device run, carry [".gpu", ".whl"], command: bash scripts/gpu_train.sh, timeout_s 560.
# What comes back under $OUT: checkpoint.pt, the EMA export, log.csv, valid.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
MINUTES=${MINUTES:-7}
RUN=.gpu/run
RESUME=""; [ -f "$RUN/checkpoint.pt" ] && RESUME="--resume"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m stemstream_cli train $RESUME --config "${CONFIG:-musdb4}" --data .gpu/musdb.npz --format packed \
  --out "$RUN" --steps "${STEPS:-200000}" --batch-size "${BATCH:-32}" --segment-s 2.0 --valid-tracks 8 \
  --valid-every 1000 --checkpoint-every 500 --threads 8 --max-minutes "$MINUTES" 2>&1 | tr '\r' '\n' | grep -v '^train:' || true
mkdir -p "$OUT/export"
cp "$RUN/checkpoint.pt" "$RUN/log.csv" "$OUT/"
cp "$RUN"/valid.csv "$OUT/" 2>/dev/null || true
cp "$RUN"/export/* "$OUT/export/"
