"""Spectrograms of the demo and a model's four stems in one PNG (dashed line: 11.025 kHz):
``python scripts/spectrograms.py MODEL OUT.png TITLE``."""
import sys, numpy as np, soundfile as sf, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from scipy.signal import spectrogram
from plugin_host.separator import StemSeparator
x, sr = sf.read("examples/demo.flac", dtype="float32")
stems = StemSeparator(sys.argv[1]).separate(np.ascontiguousarray(x), sr)
sig = [("input (demo.flac)", x.mean(1))] + [(k, v.mean(1)) for k, v in stems.items()]
fig, axes = plt.subplots(1, 5, figsize=(20, 4), sharey=True)
for ax, (name, a) in zip(axes, sig):
    f, t, S = spectrogram(a, sr, nperseg=1024, noverlap=768)
    ax.pcolormesh(t, f / 1000, 10 * np.log10(S + 1e-12), vmin=-120, vmax=-30, shading="auto", cmap="magma")
    ax.axhline(11.025, color="w", ls="--", lw=0.8)
    ax.set_title(name); ax.set_xlabel("s")
axes[0].set_ylabel("kHz")
fig.suptitle(sys.argv[3])
fig.tight_layout(); fig.savefig(sys.argv[2], dpi=80)
