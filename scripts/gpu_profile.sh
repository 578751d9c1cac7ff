#!/usr/bin/env bash
# The whole GPU compute profile in one go, for a lent GPU machine (one command, results under $OUT).
#
#   OUT=/some/dir bash scripts/gpu_profile.sh            # on the GPU machine, from the repository
#   DEVICE=cpu PROFILE_SECONDS=1 OUT=/tmp/p bash scripts/gpu_profile.sh   # CPU dry run of the same steps
#
# Needs only python with torch (a CUDA build), numpy and this source tree; matplotlib is used
# for the plots when present. It profiles the default architecture (random weights unless
# MODEL_ARGS names a checkpoint, e.g. MODEL_ARGS="--model musdb4") in every mode:
#   1. the block list (BLOCKS, mono), PROFILE_SECONDS of audio per configuration;
#   2. the default block (DEFAULT_BLOCK, the model's 128-sample frame) mono and stereo,
#      DEFAULT_BLOCK_SECONDS of audio each.
# Each mode runs in its own process (a failed torch.compile does not lose the other modes) and
# writes $OUT/<step>_<mode>.json (+ .png, .log); $OUT/summary.json merges every row and
# $OUT/env.txt records the machine, driver, torch and CUDA versions.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_profile_out}
DEVICE=${DEVICE:-cuda}
BLOCKS=${BLOCKS:-64,128,256,512,1024}
DEFAULT_BLOCK=${DEFAULT_BLOCK:-128}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
DEFAULT_BLOCK_SECONDS=${DEFAULT_BLOCK_SECONDS:-20}
MODEL_ARGS=${MODEL_ARGS:---config-json default}
MODE_TIMEOUT_S=${MODE_TIMEOUT_S:-240}
if [ "$DEVICE" = cpu ]; then MODES=${MODES:-eager compiled}; else MODES=${MODES:-eager graph compiled compiled-graph}; fi
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"

{
  date -u
  nvidia-smi 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print('gpu', torch.cuda.get_device_name() if torch.cuda.is_available() else None)"
  nproc
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

PLOT_OK=0
"$PY" -c "import matplotlib" 2>/dev/null && PLOT_OK=1
[ "$PLOT_OK" = 1 ] || echo "matplotlib missing: JSON only, no plots"

status=0
run_step() {  # step_name blocks channels seconds
  local step=$1 blocks=$2 channels=$3 seconds=$4 mode base
  for mode in $MODES; do
    base="$OUT/${step}_${mode}"
    plot_args=()
    [ "$PLOT_OK" = 1 ] && plot_args=(--plot "$base.png")
    echo "=== $step: $DEVICE $mode, blocks $blocks, channels $channels, ${seconds}s each ==="
    # shellcheck disable=SC2086
    timeout "$MODE_TIMEOUT_S" "$PY" -m latency profile $MODEL_ARGS --device "$DEVICE" --mode "$mode" \
      --blocks "$blocks" --channels "$channels" --seconds "$seconds" --json "$base.json" "${plot_args[@]}" \
      2>&1 | tee "$base.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || { echo "!!! $step $mode failed with exit code $rc (see $base.log)"; status=1; }
  done
}

run_step blocks "$BLOCKS" 1 "$PROFILE_SECONDS"
run_step default_block "$DEFAULT_BLOCK" 1,2 "$DEFAULT_BLOCK_SECONDS"

"$PY" - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = []
for path in sorted(out.glob("*_*.json")):
    for row in json.loads(path.read_text()):
        rows.append({"step": path.stem.rsplit("_", 1)[0], **row})
(out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
print(f"{'step':<14}{'mode':<16}{'ch':>3}{'block':>6}{'p50_ms':>9}{'p99_ms':>9}{'max_ms':>9}{'budget':>8}{'load99':>8}{'miss':>6}{'rtf':>7}{'setup_s':>9}")
for r in rows:
    print(f"{r['step']:<14}{r['mode']:<16}{r['channels']:>3}{r['block']:>6}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
          f"{r['max_ms']:>9.3f}{r['budget_ms']:>8.2f}{r['load_p99']:>8.2f}{r['deadline_misses']:>6}{r['rtf']:>7.3f}{r['setup_s']:>9.1f}")
PYEOF
exit $status
