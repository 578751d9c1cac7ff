"""The separator's configuration: one frozen dataclass, saved as JSON beside the weights."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPORAL_MODELS = ("lstm", "conv", "none", "bilstm")
MUSDB_STEMS = ("vocals", "drums", "bass", "other")  # the default model's (musdb4)
SLAKH_STEMS = ("bass", "drums", "guitar", "piano")
# fields added after models were saved without them: the value that reproduces those models
_LEGACY_DEFAULTS = {"bias_free_masking": False}
OUTPUT_MODES = ("mask", "waveform")
LEVEL_EPS = 1e-10  # level_generator's frame level e / sqrt(e + LEVEL_EPS): a finite gradient at silence


@dataclass(frozen=True)
class SeparatorConfig:
    """Hyper-parameters of :class:`model.RQVAESeparator`.

    The model is mono: a multichannel signal is separated channel by channel (channels are
    folded into the batch), so one set of weights serves mono and stereo alike.

    Attributes:
        sample_rate_hz: the model's own rate; audio at other rates is resampled by callers.
        stems: names of the stems the model emits, in output order.
        channels: feature channels per encoder level, e.g. ``(32, 64, 128)``.
        strides: downsampling per encoder level; their product is the frame size.
        kernel_factor: each strided conv has kernel ``kernel_factor * stride`` (>= 1).
        analysis_kernel_factor: the first level's strided conv (the analysis basis the masks
            gate) has kernel ``analysis_kernel_factor * strides[0]``; ``None``: ``kernel_factor``.
            Longer than ``kernel_factor``, the analysis reaches further into the past (finer
            frequency resolution) while the synthesis, and so the latency, stay as they are:
            asymmetric analysis and synthesis windows. At initialisation the extra, older taps
            are zero, so the untrained model equals the symmetric one.
        residual_dilations: dilations of the residual units run at every level.
        residual_kernel: kernel size of the residual units.
        temporal: latent temporal model: ``lstm`` (causal), ``conv`` (causal dilated convs),
            ``none``, or ``bilstm`` (the paper's non-causal arrangement, offline only).
        temporal_layers: number of recurrent layers (or conv units for ``conv``).
        causal: ``False`` gives the paper's symmetric padding (offline only, for comparison).
        output: ``mask`` (masks over the first level's learned basis, decoded by a shared
            synthesis layer) or ``waveform`` (one waveform per stem straight from the decoder).
        n_q: number of residual quantizers.
        codebook_size: codes per quantizer.
        codebook_dim: dimension of a code (latent projected to it when it differs).
        quantizer_dropout: probability of training with a random number of quantizers.
        dead_code_threshold: a code whose usage EMA falls below this is restarted.
        mixture_consistency: correct the stems to sum to the mixture (delayed by
            ``output_delay_samples``): each gets an equal share of the mixture minus their sum
            (Wisdom et al., ICASSP 2019). For stem sets that cover the whole mixture (MUSDB's
            ``other`` holds the rest); leave it off where a rest stays in the mixture only.
        bias_free_masking: in mask mode, the masks gate the mixture's own coefficients (the first
            level's output without its bias), so digital silence in gives exact zeros out and
            quiet input gives proportionally quiet stems. ``False`` is the older arrangement
            (masks over the biased basis: the bias, gated by the masks, adds a faint periodic
            buzz, about -37 dBFS, even to silence); configs saved without the field load as
            ``False`` so older checkpoints keep their behaviour.
        level_generator: with ``bias_free_masking``, each stem's masks also gate a learned
            per-stem vector over the basis (``[S, C0]``, zero at initialisation) scaled by the
            mixture's level in the current frame (the RMS of its coefficients over the frame's
            basis steps), so a stem can hold what masking the mixture's own coefficients cannot
            reach (e.g. bass inside a 1.38 kHz-wide bin) while digital silence still gives exact
            zeros and a quieter input gives a proportionally quieter generator.
        basis_channels: in mask mode, rows of the first level's analysis basis (the coefficients
            the masks gate and each stem's synthesis decodes); ``None``: ``channels[0]``. More rows
            than ``channels[0]`` give the masks more of the spectrum to work on (e.g. the band
            above a 22.05 kHz model's Nyquist frequency when it is warm-started at 44.1 kHz) while
            the encoder's first level stays as wide as it is: a 1x1 conv projects the basis to
            ``channels[0]`` before the level's residual units.
    """

    sample_rate_hz: int = 22050
    stems: tuple[str, ...] = MUSDB_STEMS
    channels: tuple[int, ...] = (32, 64, 128)
    strides: tuple[int, ...] = (8, 4, 4)
    kernel_factor: int = 2
    analysis_kernel_factor: int | None = None
    residual_dilations: tuple[int, ...] = (1,)
    residual_kernel: int = 3
    temporal: str = "lstm"
    temporal_layers: int = 1
    causal: bool = True
    output: str = "mask"
    n_q: int = 8
    codebook_size: int = 1024
    codebook_dim: int = 64
    quantizer_dropout: float = 0.5
    dead_code_threshold: float = 0.01
    mixture_consistency: bool = False
    bias_free_masking: bool = True
    level_generator: bool = False
    basis_channels: int | None = None

    def __post_init__(self) -> None:
        for name in ("stems", "channels", "strides", "residual_dilations"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if self.sample_rate_hz <= 0:
            problems.append(f"sample_rate_hz must be positive, got {self.sample_rate_hz}")
        if not self.stems or len(set(self.stems)) != len(self.stems):
            problems.append(f"stems must be distinct names, got {self.stems}")
        if len(self.channels) != len(self.strides) or not self.strides:
            problems.append(
                f"channels {self.channels} and strides {self.strides} need the same, non-zero length")
        if any(s < 1 for s in self.strides) or self.kernel_factor < 1:
            problems.append("strides and kernel_factor must be >= 1")
        if self.analysis_kernel_factor is not None and self.analysis_kernel_factor < self.kernel_factor:
            problems.append(f"analysis_kernel_factor must be >= kernel_factor ({self.kernel_factor}) or None, "
                            f"got {self.analysis_kernel_factor}")
        if self.temporal not in TEMPORAL_MODELS:
            problems.append(f"temporal must be one of {TEMPORAL_MODELS}, got {self.temporal!r}")
        if self.temporal == "bilstm" and self.causal:
            problems.append("temporal='bilstm' is non-causal: set causal=False with it")
        if self.output not in OUTPUT_MODES:
            problems.append(f"output must be one of {OUTPUT_MODES}, got {self.output!r}")
        if self.level_generator and not (self.output == "mask" and self.bias_free_masking):
            problems.append("level_generator needs output='mask' and bias_free_masking=True")
        if self.basis_channels is not None and (self.basis_channels < self.channels[0] or self.output != "mask"):
            problems.append(f"basis_channels must be >= channels[0] ({self.channels[0]}) and needs output='mask', "
                            f"got {self.basis_channels} with output={self.output!r}")
        if self.n_q < 1 or self.codebook_size < 2 or self.codebook_dim < 1:
            problems.append("n_q >= 1, codebook_size >= 2 and codebook_dim >= 1 are required")
        if problems:
            raise ValueError("invalid SeparatorConfig: " + "; ".join(problems))

    @property
    def frame_size(self) -> int:
        """Samples per latent frame (product of the strides): the streaming step."""
        return math.prod(self.strides)

    @property
    def basis_steps_per_frame(self) -> int:
        """Steps of the first level's basis in one frame (``level_generator``'s level window)."""
        return self.frame_size // self.strides[0]

    @property
    def basis_channel_count(self) -> int:
        """Rows of the first level's analysis basis (``basis_channels``, else ``channels[0]``)."""
        return self.basis_channels or self.channels[0]

    @property
    def analysis_kernel_samples(self) -> int:
        """Taps of the first level's analysis basis (the strided conv the masks gate)."""
        return (self.analysis_kernel_factor or self.kernel_factor) * self.strides[0]

    @property
    def output_delay_samples(self) -> int:
        """How far the network's output lags its input: the first level's analysis/synthesis
        overlap (``(kernel_factor - 1) * strides[0]``); training targets are delayed by it.
        Zero with ``causal=False``: symmetric padding centres the output on its input."""
        return (self.kernel_factor - 1) * self.strides[0] if self.causal else 0

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency at the model's rate: a frame must be complete before it runs
        (``frame_size - 1``), plus the output delay of the first level's overlap-add."""
        return self.frame_size - 1 + self.output_delay_samples

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SeparatorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SeparatorConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**{**_LEGACY_DEFAULTS, **data})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "SeparatorConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def musdb_config(**overrides: Any) -> SeparatorConfig:
    """The default configuration with MUSDB18's stems (vocals, drums, bass, other)."""
    return SeparatorConfig(**{"stems": MUSDB_STEMS, **overrides})


def slakh_config(**overrides: Any) -> SeparatorConfig:
    """The default configuration with Slakh2100's four stems (bass, drums, guitar, piano)."""
    return SeparatorConfig(**{"stems": SLAKH_STEMS, **overrides})


