"""Digital silence in gives silence out (below -100 dBFS, no DC) in every backend."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model
from model.config import SeparatorConfig
from model.runtime import StreamingSeparator
from model.separator import RQVAESeparator

SILENCE_DBFS = -100.0


def _peak_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.abs(x).max() + 1e-30))


def _assert_silent(stems: np.ndarray) -> None:
    assert _peak_dbfs(stems) < SILENCE_DBFS, f"stems peak at {_peak_dbfs(stems):.1f} dBFS for digital silence"
    dc = np.abs(stems.mean(axis=-1)).max()
    assert dc < 10 ** (SILENCE_DBFS / 20), f"DC offset {dc:.2e} for digital silence"


def _trained_looking(config: SeparatorConfig) -> RQVAESeparator:
    """A network whose every bias (and level generator) is far from zero, as after training
    (the shipped weights' analysis biases reach 0.6)."""
    torch.manual_seed(0)
    net = RQVAESeparator(config)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") or name == "generator":
                p.uniform_(-0.5, 0.5)
    return net.eval()


def test_configs_saved_without_the_field_keep_the_older_arrangement(tmp_path) -> None:
    """Weights trained with masks over the biased basis (the 22.05 kHz models up to 2026-11-30)
    came with configs saved before ``bias_free_masking`` existed: such a config loads as
    ``False``, with the synthesis bias those weights carry; new configs save the field as ``True``."""
    fields = SeparatorConfig(sample_rate_hz=22050, strides=(8, 4, 4)).to_dict()
    del fields["bias_free_masking"]
    legacy = SeparatorConfig.from_dict(fields)
    assert legacy.bias_free_masking is False
    assert RQVAESeparator(legacy).synthesis.conv.bias is not None
    SeparatorConfig().save(tmp_path / "new.json")
    assert SeparatorConfig.load(tmp_path / "new.json").bias_free_masking is True
    fresh = RQVAESeparator(SeparatorConfig())
    assert fresh.synthesis.conv.bias is None  # zeros in, exact zeros out


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("name", ["musdb4", "slakh4"])
def test_the_shipped_models_separate_silence_into_exact_zeros(name: str, backend: str) -> None:
    sep = model.load(name, backend=backend)
    assert not sep.separate(np.zeros((2, 4096), np.float32)).any()
    sep.process((np.random.default_rng(0).standard_normal((2, 4096)) * 0.3).astype(np.float32))
    sep.process(np.zeros((2, 2048), np.float32))  # the tails of the overlap and delay lines
    assert not sep.process(np.zeros((2, 4096), np.float32)).any()


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("consistency", [False, True])
@pytest.mark.parametrize("extras", [{}, {"level_generator": True}, {"level_generator": True, "basis_channels": 48}],
                         ids=["plain", "generator", "generator_wider_basis"])
def test_biased_network_keeps_silence_streaming(backend: str, consistency: bool, extras: dict) -> None:
    config = SeparatorConfig(mixture_consistency=consistency, **extras)
    sep = StreamingSeparator(_trained_looking(config), backend=backend)
    rng = np.random.default_rng(0)
    sep.process(rng.standard_normal((1, 4096)).astype(np.float32) * 0.3)  # music, then silence
    sep.process(np.zeros((1, 2048), np.float32))  # the tails of the overlap and delay lines
    _assert_silent(sep.process(np.zeros((1, 4096), np.float32)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_graph_keeps_silence() -> None:
    sep = StreamingSeparator(_trained_looking(SeparatorConfig(level_generator=True)), device="cuda", backend="torch")
    assert sep.use_cuda_graph
    sep.process(np.zeros((1, 2048), np.float32))
    _assert_silent(sep.process(np.zeros((1, 4096), np.float32)))
