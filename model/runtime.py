"""``StreamingSeparator``: the runtime that runs the separator on blocks of any length."""
from __future__ import annotations

import contextlib
import copy
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from .separator import RQVAESeparator
from .streaming import reset_streaming, streaming

if TYPE_CHECKING:
    from .numba_step import NumbaFrameStep

_OFFLINE_CHUNK_FRAMES = 512  # frames per model call in separate(); bounds memory, not results
BACKENDS = ("auto", "torch", "numba")
MAX_CHANNELS_BEYOND_SAMPLES = 16  # more channels than this and than samples: a transposed [T, C] array


def check_channels_first(shape: tuple[int, ...]) -> None:
    """Refuse a 2-D ``shape`` that looks like ``[samples, channels]`` where ``[channels, samples]`` is due.

    A block may legitimately hold fewer samples than channels (streaming), so the test is: more
    than ``MAX_CHANNELS_BEYOND_SAMPLES`` channels and more channels than samples.
    """
    if len(shape) == 2 and shape[0] > MAX_CHANNELS_BEYOND_SAMPLES and shape[0] > shape[1]:
        raise ValueError(f"audio of shape {shape} looks like [samples, channels] (soundfile's layout), but "
                         f"[channels, samples] is expected: pass x.T (e.g. shape {shape[::-1]})")


class StreamingSeparator:
    """Runs an :class:`RQVAESeparator` causally, block by block.

    ``process(block [C, T]) -> [S, C, T]`` for any ``T >= 0``: input is buffered into whole
    frames and the stems come out delayed by exactly ``latency_samples``: ``frame_size - 1``
    (the last sample of a frame is needed before the frame runs) plus the network's own
    ``output_delay_samples`` (the overlap of its first level's analysis and synthesis). Channels are separated
    independently (folded into the model's batch). ``separate(audio [C, T])`` runs a whole
    signal from a reset state and returns ``[S, C, T]`` aligned with the input.

    On CUDA, one frame step is captured in a CUDA graph and replayed; if capture fails the
    runtime falls back to eager execution and says so in ``graph_error``. With
    ``backend="numba"`` (CPU only) frames run through :class:`model.numba_step.NumbaFrameStep`
    (the same arithmetic without PyTorch's per-op overhead; weights copied at construction).
    ``backend="auto"`` (the default) is ``numba`` on the CPU and ``torch`` elsewhere.
    Non-finite input samples are replaced by zeros and counted in ``nonfinite_samples``.

    The runtime never changes the network it is given: it runs its own copy (``self.model``,
    moved to ``device``, in eval mode, streaming inside :func:`model.streaming.streaming` while
    channels are bound), so weights are copied at construction and later changes to ``model``
    are not seen, with either backend.
    """

    def __init__(self, model: RQVAESeparator, device: str | torch.device = "cpu",
                 n_q: int | None = None, use_cuda_graph: bool = True, backend: str = "auto") -> None:
        if not model.config.causal:
            raise ValueError("this model is non-causal (causal=False): it can run offline through "
                             "RQVAESeparator.forward but not in a StreamingSeparator")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.device = torch.device(device)
        if backend == "auto":
            backend = "numba" if self.device.type == "cpu" else "torch"
        if backend == "numba" and self.device.type != "cpu":
            raise ValueError(f"backend 'numba' runs on the CPU only, not on {self.device.type!r}: "
                             "use device='cpu', or backend='torch' on the GPU")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available; use device='cpu'")
        own = copy.deepcopy(model).to(self.device).eval()
        self.model: torch.nn.Module = own
        self.config = model.config
        self.stems: tuple[str, ...] = model.config.stems
        self.sample_rate_hz: int = model.config.sample_rate_hz
        self.frame_size: int = model.config.frame_size
        self.latency_samples: int = model.config.latency_samples
        self.n_q = model.quantizer.check_n_q(n_q)
        self.use_cuda_graph = use_cuda_graph and self.device.type == "cuda"
        self.backend = backend
        self._numba_step: NumbaFrameStep | None = None
        if backend == "numba":
            from .numba_step import NumbaFrameStep  # numba is imported only by this backend
            self._numba_step = NumbaFrameStep(own, self.n_q)
        self.graph_error: str | None = None
        self.nonfinite_samples = 0
        self.channels: int | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_in: torch.Tensor | None = None
        self._static_out: torch.Tensor | None = None
        self._pending = np.zeros((0, 0), np.float32)
        self._queue = np.zeros((len(self.stems), 0, 0), np.float32)
        self._streaming = contextlib.ExitStack()  # holds self.model streaming for self.channels
        self._started = False

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all history: zero streaming states and buffers (same tensors, graph kept)."""
        if self.channels is not None:
            if self._numba_step is not None:
                self._numba_step.reset()
            else:
                reset_streaming(self.model)
            self._reset_buffers(self.channels)
        self.nonfinite_samples = 0
        self._started = False

    def _reset_buffers(self, channels: int) -> None:
        self._pending = np.zeros((channels, 0), np.float32)
        # the network lags by output_delay_samples by itself; the queue adds the frame wait
        self._queue = np.zeros((len(self.stems), channels, self.frame_size - 1), np.float32)

    def _bind_channels(self, channels: int) -> None:
        if channels == self.channels:
            return
        if self._started:
            raise ValueError(f"the stream has {self.channels} channel(s) but this block has {channels}; "
                             "call reset() before changing the channel count")
        self.channels = channels
        if self._numba_step is not None:
            self._numba_step.bind(channels)
        else:
            self._streaming.close()  # the states of the previous channel count, if any
            self._streaming.enter_context(streaming(self.model, channels))
        self._graph = None
        self._reset_buffers(channels)
        if self.use_cuda_graph:
            self._capture_graph(channels)

    # ------------------------------------------------------------------ compute
    def _run(self, x: np.ndarray) -> np.ndarray:
        """Separate ``x [C, T]`` (T a multiple of the frame) -> ``[S, C, T]``, state carried."""
        if self._numba_step is None:
            inp = torch.from_numpy(np.ascontiguousarray(x)).to(self.device).unsqueeze(1)
            return self._run_torch(inp).transpose(0, 1).float().cpu().numpy()
        out = np.empty((len(self.stems),) + x.shape, np.float32)
        for start in range(0, x.shape[1], self.frame_size):
            end = start + self.frame_size
            self._numba_step.step(x[:, start:end], out[:, :, start:end])
        return out

    @torch.inference_mode()
    def _run_torch(self, x: torch.Tensor) -> torch.Tensor:
        """Model on ``x [C, 1, T]`` (T a multiple of the frame) -> ``[C, S, T]``, state carried."""
        if self._graph is None:
            return self.model(x, self.n_q).stems
        frames = x.split(self.frame_size, dim=-1)
        out = []
        for frame in frames:
            self._static_in.copy_(frame)
            self._graph.replay()
            out.append(self._static_out.clone())
        return torch.cat(out, dim=-1)

    def _capture_graph(self, channels: int) -> None:
        try:
            self._static_in = torch.zeros(channels, 1, self.frame_size, device=self.device)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(3):
                    self.model(self._static_in, self.n_q)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.inference_mode():
                self._static_out = self.model(self._static_in, self.n_q).stems
            self._graph = graph
        except RuntimeError as exc:  # capture is impossible: run eagerly and say why
            self._graph = None
            self.graph_error = f"CUDA graph capture failed, running eagerly: {exc}"
            warnings.warn(self.graph_error, RuntimeWarning, stacklevel=3)
        reset_streaming(self.model)

    # ------------------------------------------------------------------ public
    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed ``block [C, T]`` (float, any ``T``); returns ``[S, C, T]`` delayed by ``latency_samples``."""
        x = self._validate(block)
        channels, n = x.shape
        self._bind_channels(channels)
        self._started = True
        if n == 0:
            return np.zeros((len(self.stems), channels, 0), np.float32)
        pending = np.concatenate([self._pending, x], axis=1)
        usable = pending.shape[1] - pending.shape[1] % self.frame_size
        if usable:
            self._queue = np.concatenate([self._queue, self._run(pending[:, :usable])], axis=2)
        self._pending = pending[:, usable:]
        out, self._queue = self._queue[:, :, :n], self._queue[:, :, n:]
        return np.ascontiguousarray(out)

    def separate(self, audio: np.ndarray) -> np.ndarray:
        """Whole signal ``[C, T]`` from a reset state -> stems ``[S, C, T]`` aligned with it.

        The runtime is reset before and after, so a running stream must not share it;
        ``nonfinite_samples`` then holds this call's count of zeroed NaN/inf samples.
        """
        self.nonfinite_samples = 0
        x = self._validate(audio)
        nonfinite = self.nonfinite_samples
        self.reset()
        channels, n = x.shape
        self._bind_channels(channels)
        delay = self.config.output_delay_samples
        padded_n = -(-(n + delay) // self.frame_size) * self.frame_size
        padded = np.zeros((channels, padded_n), np.float32)
        padded[:, :n] = x
        chunk = _OFFLINE_CHUNK_FRAMES * self.frame_size
        out = np.zeros((len(self.stems), channels, padded_n), np.float32)
        for start in range(0, padded_n, chunk):
            out[:, :, start:start + chunk] = self._run(padded[:, start:start + chunk])
        self.reset()
        self.nonfinite_samples = nonfinite
        return out[:, :, delay:delay + n]

    def stem_index(self, name: str) -> int:
        """Position of stem ``name`` in the output; a clear error lists the model's stems."""
        if name not in self.stems:
            raise ValueError(f"this model has no stem {name!r}; its stems are {', '.join(self.stems)}")
        return self.stems.index(name)

    def _validate(self, block: np.ndarray) -> np.ndarray:
        if isinstance(block, torch.Tensor):
            block = block.detach().cpu().numpy()
        block = np.asarray(block)
        if not np.issubdtype(block.dtype, np.floating):
            raise TypeError(f"audio must be floating point ([-1, 1] float32 or float64), got dtype {block.dtype}; "
                            "convert integer PCM with x / 32768.0 (int16) first")
        if block.ndim == 1:
            raise ValueError(f"audio must be 2-D [channels, samples]; got 1-D of length {block.shape[0]}: "
                             "use block[None, :] for mono")
        if block.ndim != 2:
            raise ValueError(f"audio must be 2-D [channels, samples], got shape {block.shape}")
        if block.shape[0] < 1:
            raise ValueError("audio has no channels")
        check_channels_first(block.shape)
        x = block.astype(np.float32, copy=True)
        bad = ~np.isfinite(x)
        if bad.any():
            self.nonfinite_samples += int(bad.sum())
            x[bad] = 0.0
        return x
