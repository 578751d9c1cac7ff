"""Starting a training run from another trained separator whose stems differ."""
from __future__ import annotations

import dataclasses
import math
import re

import torch

from ..separator import RQVAESeparator, windowed_dft_basis

FALLBACK_STEM = "other"

# per-stem parameters of the output heads: (axis holding the stems, rows per stem in units of
# channels[0] (True) or single rows (False))
_PER_STEM = {"mask.conv.weight": (0, True), "mask.conv.bias": (0, True),
             "synthesis.conv.weight": (0, True), "synthesis.conv.bias": (0, False),
             "head.conv.weight": (1, False), "head.conv.bias": (0, False), "generator": (0, False)}
ANALYSIS_WEIGHT = "encoder.0.down.conv.weight"  # [CB, 1, taps]: its newest taps are the last ones
ANALYSIS_BIAS = "encoder.0.down.conv.bias"  # [CB]
PROJECTION_WEIGHT = "encoder.0.project.conv.weight"  # [C0, CB, 1]: a wider basis -> the first level's channels
PROJECTION_BIAS = "encoder.0.project.conv.bias"  # [C0]
# the first level's transposed convs, whose taps are samples at the model's rate
_SYNTHESIS_WEIGHTS = ("synthesis.conv.weight", "head.conv.weight")
# an added residual unit's last conv: zero, so the unit starts as the identity
_ADDED_UNIT_OUT = re.compile(r"\.units\.\d+\.out\.(weight|bias)$")


def stem_map(target: tuple[str, ...], source: tuple[str, ...]) -> dict[str, str]:
    """Each target stem -> the source stem it starts from: the same name, else ``other``."""
    mapping = {}
    for stem in target:
        if stem in source:
            mapping[stem] = stem
        elif FALLBACK_STEM in source:
            mapping[stem] = FALLBACK_STEM
        else:
            raise ValueError(f"cannot start stem {stem!r} from a model with stems {', '.join(source)}: "
                             f"it has neither {stem!r} nor {FALLBACK_STEM!r}")
    return mapping


def stretch_taps(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """A kernel ``[..., K]`` sampled ``factor`` times as densely: ``[..., factor * K]``, linear
    interpolation between the taps (each new tap centred on its share of an old one)."""
    taps = weight.shape[-1]
    at = ((torch.arange(factor * taps, dtype=torch.float64) + 0.5) / factor - 0.5).clamp(0, taps - 1)
    lo = at.floor().long().clamp(max=taps - 2) if taps > 1 else at.floor().long()
    frac = (at - lo).to(weight.dtype)
    hi = (lo + 1).clamp(max=taps - 1)
    return weight[..., lo] * (1 - frac) + weight[..., hi] * frac


def _rate_factor(target: RQVAESeparator, source: RQVAESeparator) -> int:
    """How many times the target's rate is the source's (1: the same), checking that the target
    is the source at that rate: a first stride (and so its kernels) that many times longer."""
    t, s = target.config, source.config
    factor = t.sample_rate_hz // s.sample_rate_hz
    if factor * s.sample_rate_hz != t.sample_rate_hz or factor < 1:
        raise ValueError(f"cannot warm-start a {t.sample_rate_hz} Hz model from a {s.sample_rate_hz} Hz one: "
                         "the target's rate must be a whole multiple of the source's")
    if t.strides[0] != factor * s.strides[0] or t.strides[1:] != s.strides[1:]:
        raise ValueError(f"cannot warm-start a {t.sample_rate_hz} Hz model with strides {t.strides} from a "
                         f"{s.sample_rate_hz} Hz one with strides {s.strides}: at {factor}x the rate the first "
                         f"stride must be {factor}x as long ({factor * s.strides[0]}) and the others the same")
    return factor


def least_covered_rows(synthesis: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` rows ``[count, K]`` of the windowed real DFT basis of ``K`` taps that the source's
    synthesis rows ``synthesis [R, 1, K]`` (at the target's rate) cover least: the rows of
    smallest summed squared projection, in order of frequency. For a source warm-started at
    twice its rate (or a first warm start at it) they are the band above its old Nyquist
    frequency, where its stretched rows hold next to nothing."""
    kernel = synthesis.shape[-1]
    rows = windowed_dft_basis(kernel, kernel)  # [K, K]
    if count > kernel:
        raise ValueError(f"cannot add {count} basis rows: a {kernel}-tap basis has {kernel} directions; "
                         f"set basis_channels to at most channels[0] + {kernel}")
    coverage = (synthesis[:, 0, :].double() @ rows.double().t()).square().sum(0)  # [K]
    chosen = coverage.argsort()[:count].sort().values
    return rows[chosen]


def _grow_rows(chunks: list[torch.Tensor], rows: int, axis: int, new: torch.Tensor | None) -> list[torch.Tensor]:
    """Each stem's ``chunk`` padded along ``axis`` to ``rows`` rows with ``new`` (zeros when None)."""
    grown = []
    for chunk in chunks:
        extra = rows - chunk.shape[axis]
        if extra:
            shape = list(chunk.shape)
            shape[axis] = extra
            chunk = torch.cat([chunk, (new if new is not None else chunk.new_zeros(shape)).reshape(shape)], dim=axis)
        grown.append(chunk)
    return grown


@torch.no_grad()
def warm_start(target: RQVAESeparator, source: RQVAESeparator) -> dict[str, str]:
    """Copy ``source``'s weights (codebooks and their state included) into ``target``.

    The two configs must be equal except for ``stems``, ``mixture_consistency`` and
    ``bias_free_masking`` (which have no weights of their own), a longer analysis basis
    (``analysis_kernel_factor``: the source's basis fills its newest taps, the older ones start
    at zero, so the target starts as the same function), a ``level_generator`` the source
    lacks (it starts at zero: the same function again), and a whole multiple of the source's
    rate with the first stride that many times longer (the first level's analysis and synthesis
    kernels are resampled with :func:`stretch_taps`, the analysis scaled to sum as many samples;
    the rest runs at the same frame rates and is copied: below the source's Nyquist frequency
    the target starts close to the source's function), and a wider basis (``basis_channels``):
    its new rows are the windowed DFT rows of :func:`least_covered_rows` in the analysis and in each
    stem's synthesis, their masks start equal for every stem (so with ``mixture_consistency`` the
    stems start as they were: each gets a quarter of what the old basis missed), the projection
    to ``channels[0]`` starts as the identity on the old rows, and the generator is scaled by
    ``sqrt(new rows / old rows)`` so the frame level, a mean over the rows, starts as it was
    (exactly where the new band is silent); and more residual units (``residual_dilations``
    that begin with the source's): each added unit's last conv starts at zero, so the unit is
    the identity and the target starts as the same function. Each target stem's head parameters come from
    :func:`stem_map`'s source stem.
    Returns that map.
    """
    factor = _rate_factor(target, source)
    same = dataclasses.replace(source.config, stems=target.config.stems,
                               sample_rate_hz=target.config.sample_rate_hz, strides=target.config.strides,
                               mixture_consistency=target.config.mixture_consistency,
                               bias_free_masking=target.config.bias_free_masking,
                               analysis_kernel_factor=target.config.analysis_kernel_factor,
                               level_generator=target.config.level_generator,
                               basis_channels=target.config.basis_channels,
                               residual_dilations=target.config.residual_dilations)
    if same != target.config:
        diff = [f.name for f in dataclasses.fields(same) if getattr(same, f.name) != getattr(target.config, f.name)]
        raise ValueError(f"cannot warm-start: the models differ in {', '.join(diff)} "
                         "(only stems, mixture_consistency, bias_free_masking, a longer "
                         "analysis_kernel_factor, an added level_generator, more basis_channels, more "
                         "residual_dilations and a multiple of the rate may differ)")
    old_units, units = source.config.residual_dilations, target.config.residual_dilations
    if units[:len(old_units)] != old_units:
        raise ValueError(f"cannot warm-start residual dilations {units} from {old_units}: units may only be "
                         "added after the source's (its dilations must begin the target's)")
    old_rows, rows = source.config.basis_channel_count, target.config.basis_channel_count
    if rows < old_rows:
        raise ValueError(f"cannot warm-start a {rows}-row basis from a {old_rows}-row one: basis_channels may only grow")
    if target.config.analysis_kernel_samples < factor * source.config.analysis_kernel_samples:
        raise ValueError(f"cannot warm-start a {target.config.analysis_kernel_samples}-tap analysis basis from a "
                         f"{source.config.analysis_kernel_samples}-tap one at {factor}x its rate: it may only grow")
    if source.config.level_generator and not target.config.level_generator:
        raise ValueError("cannot warm-start a model without level_generator from one with it: "
                         "its generator would be lost")
    mapping = stem_map(target.config.stems, source.config.stems)
    index = [source.config.stems.index(mapping[s]) for s in target.config.stems]
    src = source.state_dict()
    if factor > 1:  # the first level's taps at the target's rate
        src[ANALYSIS_WEIGHT] = stretch_taps(src[ANALYSIS_WEIGHT], factor) / factor
        for name in _SYNTHESIS_WEIGHTS:
            if name in src:
                src[name] = stretch_taps(src[name], factor)
    new_rows = None  # [rows - old_rows, synthesis taps]: a wider basis's new rows
    if rows > old_rows:
        new_rows = least_covered_rows(src["synthesis.conv.weight"], rows - old_rows)
        src[ANALYSIS_BIAS] = torch.cat([src[ANALYSIS_BIAS], src[ANALYSIS_BIAS].new_zeros(rows - old_rows)])
        if "generator" in src:
            src["generator"] = src["generator"] * math.sqrt(rows / old_rows)
        if PROJECTION_WEIGHT not in src:  # the source's first level read its basis directly
            src[PROJECTION_WEIGHT] = torch.eye(target.config.channels[0], old_rows).unsqueeze(-1)
            src[PROJECTION_BIAS] = torch.zeros(target.config.channels[0])
        src[PROJECTION_WEIGHT] = torch.cat([src[PROJECTION_WEIGHT], src[PROJECTION_WEIGHT].new_zeros(
            target.config.channels[0], rows - old_rows, 1)], dim=1)
    for name, value in target.state_dict().items():
        if name not in src:  # a bias or generator the source lacks stays zero; an added unit is the identity
            if _ADDED_UNIT_OUT.search(name):
                value.zero_()
            continue
        if name == ANALYSIS_WEIGHT:
            taps = src[name].shape[-1]
            value.zero_()
            value[:old_rows, :, value.shape[-1] - taps:] = src[name]
            if new_rows is not None:
                value[old_rows:, 0, value.shape[-1] - new_rows.shape[-1]:] = new_rows
        elif name in _PER_STEM:
            axis, per_channel = _PER_STEM[name]
            chunks = src[name].split(old_rows if per_channel else 1, dim=axis)
            chunks = [chunks[i] for i in index]
            if per_channel:  # new rows: zero masks (0.5 for every stem), DFT rows in the synthesis
                chunks = _grow_rows(chunks, rows, axis, new_rows if name == "synthesis.conv.weight" else None)
            elif name == "generator":
                chunks = _grow_rows(chunks, rows, 1, None)
            value.copy_(torch.cat(chunks, dim=axis))
        else:
            value.copy_(src[name])
    return mapping
