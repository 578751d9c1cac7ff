#!/bin/bash
# Issue 11's measurements of a musdb4-like model (shipped name or checkpoint dir), as in docs/models/musdb4.md (Scores):
#   bash scripts/measure_model.sh MODEL OUTDIR VALIDJSON
# Needs ../shared/data (the 8 validation songs), jackd, an idle machine (it kills running jackd servers).
set -e
m=$1; out=$2; valid=$3; mkdir -p $out
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)"
tracks="Actions - One Minute Smile,Celestial Shore - Die For Us,Fergessen - Nos Palpitants,James May - If You Say,Meaxic - Take A Step,Patrick Talbot - Set Me Free,Sweet Lights - You Let Me Down,Triviul - Dorothy"  # musdb4's validation songs
date > $out/started.txt
python -m stemstream_cli eval --model $m mixture --data ../shared/data/musdb18-7/train --format musdb \
    --tracks "$tracks" --json $valid > $out/eval.log 2>&1
echo eval done; date
for q in 1 2 4; do
  python -m stemstream_cli eval --model $m --data ../shared/data/musdb18-7/train --format musdb \
      --tracks "$tracks" --no-sdr --n-q $q --json $out/valid-nq$q.json > /dev/null 2>&1
done
echo nq done; date
python -m stemstream_cli profile --model $m --mode numba --blocks 240 --channels 2 --seconds 60 --json $out/profile-numba-240.json > $out/profile.log 2>&1
echo profile done; date
pkill jackd || true; sleep 1
for rp in "44100 256 auto" "44100 128 auto" "48000 256 auto" "44100 256 worker"; do
  set -- $rp
  JACK_NO_AUDIO_RESERVATION=1 jackd -n rt$1p$2 --no-realtime -d dummy -r $1 -p $2 > /dev/null 2>&1 &
  sleep 2
  JACK_DEFAULT_SERVER=rt$1p$2 python -m stemstream_cli roundtrip --model $m --mode $3 --json $out/roundtrip-$1-p$2-$3.json > $out/roundtrip-$1-p$2-$3.log 2>&1 || true
  pkill jackd; sleep 1
done
echo roundtrips done; date
python - $m $out <<'PY'
import json, sys, subprocess, numpy as np, soundfile as sf
import model
m, out = sys.argv[1], sys.argv[2]
res = {}
for backend in ("torch", "numba"):
    sep = model.load(m, backend=backend)
    y = sep.separate(np.zeros((2, 44100), np.float32))
    res[f"silence_max_abs_{backend}"] = float(np.abs(y).max())
subprocess.run(["python", "-m", "stemstream_cli", "separate", "examples/demo.flac", "--model", m,
                "--out", f"{out}/sep", "--overwrite", "--quiet"], check=True)
x, sr = sf.read("examples/demo.flac", dtype="float64")
stems = [sf.read(f"{out}/sep/demo/{s}.wav", dtype="float64")[0] for s in ("vocals", "drums", "bass", "other")]
total = sum(stems)
res["null_db"] = float(10 * np.log10(((total - x) ** 2).sum() / (x ** 2).sum()))
f = np.fft.rfftfreq(x.shape[0], 1 / sr)
band = lambda a: float((np.abs(np.fft.rfft(a, axis=0)) ** 2)[f >= 11500].sum())
res["top_band_kept_db"] = float(10 * np.log10(band(total) / band(x)))
res["top_band_share_db"] = {s: float(10 * np.log10(band(a) / band(x))) for s, a in zip(("vocals", "drums", "bass", "other"), stems)}
json.dump(res, open(f"{out}/checks.json", "w"), indent=1); print(res)
PY
python scripts/topband.py $m --json $out/topband.json > $out/topband.log 2>&1
echo all done; date
