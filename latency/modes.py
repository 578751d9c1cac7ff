"""Execution modes of the separator's frame step, as the profiler runs them.

- ``eager``: plain PyTorch (``StreamingSeparator(..., use_cuda_graph=False)``).
- ``graph``: the runtime's CUDA-graph replay of one frame step (CUDA only).
- ``compiled``: ``torch.compile`` of the one-frame step; a block of ``k`` frames runs it ``k``
  times, so the compiled graph sees one fixed shape.
- ``compiled-graph``: the compiled frame step, captured in the runtime's CUDA graph (CUDA only).
- ``numba``: the runtime's numba backend, the frame step as numba kernels (CPU only).

Imports only torch and :mod:`model` (which imports numba for the ``numba`` mode only), so the
GPU profile runs where nothing else is installed.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

import model

MODES = ("eager", "graph", "compiled", "compiled-graph", "numba")
CUDA_ONLY_MODES = ("graph", "compiled-graph")
CPU_ONLY_MODES = ("numba",)


class ModeError(ValueError):
    """A mode that this device or machine cannot run."""


class _StepOutput(NamedTuple):
    """What the runtime reads of a model call: ``stems [B, S, T]``."""

    stems: torch.Tensor


class CompiledFrameStep(nn.Module):
    """``torch.compile`` of ``net``'s one-frame step, called frame by frame.

    ``forward(x [B, 1, T], n_q) -> stems [B, S, T]`` (``T`` a multiple of the frame) with the
    streaming state carried exactly as by ``net`` itself (the states are the same tensors).
    ``backend`` is torch.compile's (``inductor`` generates fused kernels; ``eager`` only traces,
    which checks the tracing of the stateful step without minutes of code generation).
    """

    def __init__(self, net: model.RQVAESeparator, backend: str = "inductor") -> None:
        super().__init__()
        self.net = net
        self.frame_size = net.frame_size
        self._step = torch.compile(self._frame, dynamic=False, backend=backend)

    def _frame(self, frame: torch.Tensor, n_q: int | None) -> torch.Tensor:
        return self.net(frame, n_q).stems

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> _StepOutput:
        frames = [self._step(f, n_q) for f in x.split(self.frame_size, dim=-1)]
        return _StepOutput(frames[0] if len(frames) == 1 else torch.cat(frames, dim=-1))


def check_mode(device: str, mode: str) -> None:
    """Raise :class:`ModeError` with what to do when ``mode`` cannot run on ``device`` here."""
    if mode not in MODES:
        raise ModeError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        kind = str(device)
    if kind not in ("cpu", "cuda"):
        raise ModeError(f"unsupported device {device!r}; use cpu or cuda")
    if mode in CPU_ONLY_MODES and kind != "cpu":
        raise ModeError(f"mode {mode!r} runs numba kernels on the CPU: use --device cpu "
                        "(on the GPU use --mode graph or compiled-graph)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModeError("--device cuda was requested but this machine has no usable CUDA "
                        f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                        "profile with --device cpu, or run scripts/gpu_profile.sh on a GPU machine")
    if mode in CUDA_ONLY_MODES and kind != "cuda":
        raise ModeError(f"mode {mode!r} replays a CUDA graph, which needs --device cuda "
                        f"(CUDA available here: {'yes' if torch.cuda.is_available() else 'no'}); "
                        "on the CPU use --mode eager or --mode compiled")


def build_runtime(net: model.RQVAESeparator, device: str, mode: str, n_q: int | None = None,
                  compile_backend: str = "inductor") -> model.StreamingSeparator:
    """A fresh :class:`model.StreamingSeparator` running ``net`` on ``device`` in ``mode``.

    Capture (graph modes) and compilation (compiled modes) happen on the first ``process``
    call, which the profiler times separately as set-up; the numba mode compiles its kernels
    (or loads them from numba's cache) here, when the runtime is built.
    """
    check_mode(device, mode)
    use_graph = mode in CUDA_ONLY_MODES
    backend = "numba" if mode == "numba" else "torch"
    runtime = model.StreamingSeparator(net, device=device, n_q=n_q, use_cuda_graph=use_graph, backend=backend)
    if mode.startswith("compiled"):
        runtime.model = CompiledFrameStep(runtime.model, compile_backend)
    return runtime
