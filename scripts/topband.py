"""The band above 11.5 kHz of musdb4's 8 validation songs at 44.1 kHz, per stem: windowed SI-SDRi of
the high-passed stems (the paper's windows, at 44.1 kHz) and the energy each stem and its reference
hold there against the mixture's. ``python scripts/topband.py MODEL [MODEL ...] --json OUT``
(models through the full pipeline, ``plugin_host.StemSeparator``; needs ../shared/data)."""
import json, sys
from pathlib import Path
import numpy as np
from model.training.data import read_musdb
from model.training.metrics import windowed_si_sdri
from plugin_host.separator import StemSeparator

RATE, EDGE_HZ = 44100, 11500.0
names = ["Actions - One Minute Smile", "Celestial Shore - Die For Us", "Fergessen - Nos Palpitants", "James May - If You Say",
         "Meaxic - Take A Step", "Patrick Talbot - Set Me Free", "Sweet Lights - You Let Me Down", "Triviul - Dorothy"]
models = [a for a in sys.argv[1:] if not a.startswith("--")]
out = sys.argv[sys.argv.index("--json") + 1]
models = [m for m in models if m != out]

def highpass(x):
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / RATE) < EDGE_HZ] = 0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1)

result = {}
for m in models:
    sep = StemSeparator(m)
    stems = sep.runtime.stems
    scores, est_e, ref_e, mix_e = [], np.zeros(len(stems)), np.zeros(len(stems)), 0.0
    for n in names:
        track = read_musdb(Path("../shared/data/musdb18-7/train") / f"{n}.stem.mp4", RATE, channels=2)
        out_stems = sep.separate(track.mixture.T.copy(), RATE)  # [T, C] layout
        for c in range(2):
            est = highpass(np.stack([out_stems[s][:, c] for s in stems]).astype(np.float64))
            ref = highpass(np.stack([track.stems[s][c] for s in stems]).astype(np.float64))
            mix = highpass(track.mixture[c].astype(np.float64))
            scores.append(windowed_si_sdri(est, ref, mix, RATE))
            est_e += (est ** 2).sum(-1); ref_e += (ref ** 2).sum(-1); mix_e += float((mix ** 2).sum())
    s = np.concatenate(scores)
    result[m] = {"si_sdri_top_db": {st: float(np.nanmean(s[:, i])) for i, st in enumerate(stems)},
                 "mean_si_sdri_top_db": float(np.nanmean(np.nanmean(s, 0))),
                 "stem_top_energy_re_reference_db": {st: float(10 * np.log10(est_e[i] / ref_e[i])) for i, st in enumerate(stems)},
                 "stem_top_energy_re_mixture_db": {st: float(10 * np.log10(est_e[i] / mix_e)) for i, st in enumerate(stems)},
                 "reference_top_energy_re_mixture_db": {st: float(10 * np.log10(ref_e[i] / mix_e)) for i, st in enumerate(stems)}}
    print(m, json.dumps(result[m]), flush=True)
json.dump({"edge_hz": EDGE_HZ, "rate_hz": RATE, "songs": names, "models": result}, open(out, "w"), indent=1)
