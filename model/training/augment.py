"""Training batches with augmentation: remixing stems across songs, gains, offsets, channels, polarity."""
from __future__ import annotations

import numpy as np

from .data.track import Track, residual


class RemixSampler:
    """Draws mono training examples ``[B, S + 1, L]`` from tracks: the model's ``S`` stems, then
    the rest (``mixture - sum(stems)``: instruments no stem covers, e.g. strings and pads in a
    Slakh song, which stay in the mixture only). The training mixture is the sum of all ``S + 1``.

    For every example and source: with probability ``remix_prob`` the stem comes from a random
    song at a random offset (remixing across songs), otherwise from the example's own song and
    offset; a random gain in ``gain_db``; for stereo sources a random channel or their mean
    (channel swap) and a random polarity. Stems a track lacks are silent. Silent draws are
    retried a few times so most examples hold several active stems. ``track_weights`` (one per
    track; default equal) sets how often each track is drawn, e.g. to give a second data set a
    fixed share of the draws whatever its size.
    """

    def __init__(self, tracks: list[Track], stems: tuple[str, ...], segment_samples: int, seed: int,
                 remix_prob: float = 0.5, gain_db: tuple[float, float] = (-6.0, 3.0),
                 silence_db: float = -50.0, track_weights: list[float] | None = None) -> None:
        keep = [i for i, t in enumerate(tracks) if t.num_samples >= segment_samples]
        if not keep:
            raise ValueError(f"no track is at least {segment_samples} samples long; use a shorter segment")
        usable = [tracks[i] for i in keep]
        self.tracks = usable
        # probability of drawing each usable track (the base song and every remixed stem); None: uniform
        self.track_p = None
        if track_weights is not None:
            if len(track_weights) != len(tracks) or min(track_weights) < 0:
                raise ValueError(f"track_weights needs one weight >= 0 per track ({len(tracks)}), got {len(track_weights)}")
            weights = np.array([track_weights[i] for i in keep], np.float64)
            if weights.sum() <= 0:
                raise ValueError("every usable track has weight 0; give some track a positive weight")
            self.track_p = weights / weights.sum()
        self.rests = [residual(t.mixture, (t.stems[k] for k in stems if k in t.stems))
                      for t in usable]  # [C, T] each, in the tracks' dtype
        self.stems = stems
        self.segment_samples = segment_samples
        self.remix_prob = remix_prob
        self.gain_db = gain_db
        self.silence_db = silence_db
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def _excerpt(self, index: int, stem: str | None, offset: int) -> np.ndarray:
        """Mono ``[L]`` of ``stem`` (``None``: the rest) of track ``index`` at ``offset``."""
        audio = self.rests[index] if stem is None else self.tracks[index].stems.get(stem)
        if audio is None:
            return np.zeros(self.segment_samples, np.float32)
        piece = audio[:, offset:offset + self.segment_samples].astype(np.float32)  # tracks may be float16
        choice = self.rng.integers(piece.shape[0] + 1)
        mono = piece.mean(0) if choice == piece.shape[0] else piece[choice]
        return mono * (1.0 if self.rng.random() < 0.5 else -1.0)

    def _draw_track(self) -> int:
        if self.track_p is None:  # the uniform draw of runs without weights, unchanged
            return int(self.rng.integers(len(self.tracks)))
        return int(self.rng.choice(len(self.tracks), p=self.track_p))

    def _draw_offset(self, index: int) -> int:
        return int(self.rng.integers(0, self.tracks[index].num_samples - self.segment_samples + 1))

    def example(self) -> np.ndarray:
        """One example ``[S + 1, L]`` float32 (the last row is the rest)."""
        base = self._draw_track()
        base_offset = self._draw_offset(base)
        out = np.zeros((len(self.stems) + 1, self.segment_samples), np.float32)
        for s, stem in enumerate((*self.stems, None)):
            for _ in range(4 if stem is not None else 1):  # a silent rest is common and fine
                if self.rng.random() < self.remix_prob:
                    index = self._draw_track()
                    offset = self._draw_offset(index)
                else:
                    index, offset = base, base_offset
                piece = self._excerpt(index, stem, offset)
                if 10 * np.log10(np.mean(piece ** 2) + 1e-12) > self.silence_db:
                    break
            gain = 10 ** (self.rng.uniform(*self.gain_db) / 20)
            out[s] = piece * gain
        peak = np.abs(out.sum(0)).max()
        if peak > 1.0:
            out /= peak
        return out

    def batch(self, batch_size: int, step: int | None = None, first: int = 0) -> np.ndarray:
        """``[B, S + 1, L]`` float32: stems, then the rest.

        With ``step``, example ``k`` (``first <= k < first + B``) is drawn from its own generator
        seeded by ``(seed, step, k)``: a step's global batch is then the same however it is split
        (DDP rank ``r`` of a per-rank batch ``B`` draws ``first = r * B``) and a resumed run draws
        what the uninterrupted one would have. Without it, examples follow one running generator.
        """
        if step is None:
            return np.stack([self.example() for _ in range(batch_size)])
        out = []
        for k in range(first, first + batch_size):
            self.rng = np.random.default_rng([self.seed, step, k])
            out.append(self.example())
        return np.stack(out)
