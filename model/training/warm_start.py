"""Starting a training run from another trained separator whose stems differ."""
from __future__ import annotations

import dataclasses

import torch

from ..separator import RQVAESeparator

FALLBACK_STEM = "other"

# per-stem parameters of the output heads: (axis holding the stems, rows per stem in units of
# channels[0] (True) or single rows (False))
_PER_STEM = {"mask.conv.weight": (0, True), "mask.conv.bias": (0, True),
             "synthesis.conv.weight": (0, True), "synthesis.conv.bias": (0, False),
             "head.conv.weight": (1, False), "head.conv.bias": (0, False), "generator": (0, False)}
ANALYSIS_WEIGHT = "encoder.0.down.conv.weight"  # [C0, 1, taps]: its newest taps are the last ones


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


@torch.no_grad()
def warm_start(target: RQVAESeparator, source: RQVAESeparator) -> dict[str, str]:
    """Copy ``source``'s weights (codebooks and their state included) into ``target``.

    The two configs must be equal except for ``stems``, ``mixture_consistency`` and
    ``bias_free_masking`` (which have no weights of their own), a longer analysis basis
    (``analysis_kernel_factor``: the source's basis fills its newest taps, the older ones start
    at zero, so the target starts as the same function) and a ``level_generator`` the source
    lacks (it starts at zero: the same function again); each target stem's head parameters
    come from :func:`stem_map`'s source stem.
    Returns that map.
    """
    same = dataclasses.replace(source.config, stems=target.config.stems,
                               mixture_consistency=target.config.mixture_consistency,
                               bias_free_masking=target.config.bias_free_masking,
                               analysis_kernel_factor=target.config.analysis_kernel_factor,
                               level_generator=target.config.level_generator)
    if same != target.config:
        diff = [f.name for f in dataclasses.fields(same) if getattr(same, f.name) != getattr(target.config, f.name)]
        raise ValueError(f"cannot warm-start: the models differ in {', '.join(diff)} "
                         "(only stems, mixture_consistency, bias_free_masking, a longer "
                         "analysis_kernel_factor and an added level_generator may differ)")
    if target.config.analysis_kernel_samples < source.config.analysis_kernel_samples:
        raise ValueError(f"cannot warm-start a {target.config.analysis_kernel_samples}-tap analysis basis from a "
                         f"{source.config.analysis_kernel_samples}-tap one: it may only grow")
    if source.config.level_generator and not target.config.level_generator:
        raise ValueError("cannot warm-start a model without level_generator from one with it: "
                         "its generator would be lost")
    mapping = stem_map(target.config.stems, source.config.stems)
    index = [source.config.stems.index(mapping[s]) for s in target.config.stems]
    base = target.config.channels[0]
    src = source.state_dict()
    for name, value in target.state_dict().items():
        if name not in src:  # a synthesis bias or generator the source lacks: it stays zero
            continue
        if name == ANALYSIS_WEIGHT:
            taps = src[name].shape[-1]
            value.zero_()
            value[..., value.shape[-1] - taps:] = src[name]
        elif name in _PER_STEM:
            axis, per_channel = _PER_STEM[name]
            rows = base if per_channel else 1
            chunks = src[name].split(rows, dim=axis)
            value.copy_(torch.cat([chunks[i] for i in index], dim=axis))
        else:
            value.copy_(src[name])
    return mapping
