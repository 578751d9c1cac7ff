"""Oracle masks: the ceiling of a mask model's output head, given the true stems.

A mask model (``output="mask"``) can only gate the coefficients of its own first-level basis
with masks in [0, 1] and decode them with its per-stem synthesis. Replacing its network's masks
by masks computed from the reference stems tells how much of a score is lost in the network
(the masks it predicts) and how much in the basis itself (what even ideal masks cannot reach):

- ``psm``: ``clip(C_stem / C_mixture, 0, 1)`` per real coefficient (the phase-sensitive mask of
  a real basis, clipped to the sigmoid's range);
- ``irm``: ``|C_stem| / sum over stems of |C_stem|`` (the ideal ratio mask of a real basis).

``C`` are the basis coefficients without the analysis bias (the linear part, so the stems'
coefficients sum to the mixture's). The level generator is not used: the masks alone gate the
mixture's coefficients (:meth:`RQVAESeparator.mask_coefficients`), then the model's own
synthesis and mixture consistency (:meth:`RQVAESeparator.synthesize`) make the stems.
"""
from __future__ import annotations

import numpy as np
import torch

from ..separator import RQVAESeparator

ORACLE_MASKS = ("psm", "irm")
_TINY = 1e-8  # below this a coefficient counts as zero (no share to give)


def oracle_masks(mixture: torch.Tensor, stems: torch.Tensor, kind: str) -> torch.Tensor:
    """Ideal masks ``[B, S, C0, T0]`` from the linear coefficients of the ``mixture [B, C0, T0]``
    and of each reference stem ``stems [B, S, C0, T0]``; ``kind`` one of :data:`ORACLE_MASKS`."""
    if kind == "psm":
        safe = torch.where(mixture.abs() < _TINY, torch.full_like(mixture, _TINY), mixture)
        return (stems / safe.unsqueeze(1)).clamp(0.0, 1.0)
    if kind == "irm":
        magnitude = stems.abs()
        return magnitude / (magnitude.sum(1, keepdim=True) + _TINY)
    raise ValueError(f"unknown oracle mask {kind!r}: choose one of {', '.join(ORACLE_MASKS)}")


@torch.inference_mode()
def oracle_stems(net: RQVAESeparator, mixture: np.ndarray, references: np.ndarray, kind: str) -> np.ndarray:
    """Stems ``[S, C, T]`` of ``mixture [C, T]`` decoded by ``net``'s basis and synthesis under the
    ideal masks of ``references [S, C, T]`` (one per stem of ``net``, zeros where the data lacks
    it), aligned with the input like :func:`model.training.evaluate._run_offline`."""
    if net.config.output != "mask":
        raise ValueError(f"oracle masks need a mask model (output='mask'); this one has output="
                         f"{net.config.output!r}")
    if references.shape[0] != len(net.config.stems) or references.shape[1:] != mixture.shape:
        raise ValueError(f"references {references.shape} do not match {len(net.config.stems)} stems of a "
                         f"{mixture.shape} mixture")
    channels, n = mixture.shape
    delay, frame = net.config.output_delay_samples, net.config.frame_size
    length = -(-(n + delay) // frame) * frame
    signals = np.zeros((channels, 1 + len(references), length), np.float32)  # mixture, then each stem
    signals[:, 0, :n] = mixture
    signals[:, 1:, :n] = references.transpose(1, 0, 2)
    device = next(net.parameters()).device
    x = torch.from_numpy(signals).to(device)
    analysis = net.encoder[0].down
    linear = analysis(x.flatten(0, 1).unsqueeze(1)) - analysis.conv.bias.view(1, -1, 1)  # [C * (1+S), C0, T0]
    linear = linear.view(channels, 1 + len(references), *linear.shape[1:])
    masks = oracle_masks(linear[:, 0], linear[:, 1:], kind)
    coefficients = net.mask_coefficients(analysis(x[:, :1]))  # [C, C0, T0]
    stems = net.synthesize(masks * coefficients.unsqueeze(1), x[:, :1])  # [C, S, T']
    return stems[:, :, delay:delay + n].float().cpu().numpy().transpose(1, 0, 2)
