#!/usr/bin/env bash
# CI step: install stemstream NON-editable into a clean venv (no system site-packages) and run each
# subcommand's smallest real path from outside the repository, so that a dependency missing from
# setup.py fails here (the development Python already has everything, so the test suite cannot see it).
# Usage: bash scripts/ci_fresh_install.sh [WORKDIR]   (default: a new folder under /tmp, removed at exit)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/stemstream-fresh-XXXXXX)}"
[ $# -ge 1 ] || trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
SS="$WORK/venv/bin/stemstream"
# the CPU build of torch (a bare requirement would pull a multi-GB CUDA build); then the package itself
"$PY" -m pip install -q --no-compile "torch==2.13.0"
# from a copy of the tracked files (what a clean clone holds; the build leaves nothing in the repository)
mkdir -p "$WORK/src"
git -C "$REPO" ls-files -z | (cd "$REPO" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
"$PY" -m pip install -q --no-compile "$WORK/src"
echo "fresh venv: installed in $((SECONDS - START)) s"
cd "$WORK"   # never the repository: its sources must not be importable from here
"$PY" - <<'EOF'
import model, plugin_host, rt, latency
for pkg in (model, plugin_host, rt, latency):
    assert "site-packages" in pkg.__file__, f"{pkg.__name__} imported from {pkg.__file__}, not the installed copy"
EOF
# render: two 4 s procedural songs, the smallest eval set
"$SS" render --out data --split test --tracks 2 --seconds 4 --seed 3 --quiet
# eval with museval's SDR (the import a missing declaration would break)
"$SS" eval --model musdb4 --data data/test --format slakh --channels 1 --json eval.json
# separate a 3 s cut of the bundled example
"$PY" - "$REPO/examples/demo.flac" <<'EOF'
import sys
import soundfile
x, rate = soundfile.read(sys.argv[1], frames=3 * 44100, dtype="float32")
soundfile.write("demo3.wav", x, rate)
EOF
"$SS" separate demo3.wav --out separated --quiet
test -s separated/demo3/vocals.wav
# profile: one block size, one second
"$SS" profile --blocks 256 --seconds 1 --warmup-seconds 0.2 --json profile.json
echo "fresh venv: every subcommand ran in $((SECONDS - START)) s"
