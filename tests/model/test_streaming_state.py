"""The typed streaming-state contract: ``streaming()`` leaves a network as it found it, states
are allocated once and written in place, and the runtime never changes the caller's network."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model
from model.streaming import (CausalConv1d, ConvState, RecurrentState, StreamingModule, reset_streaming,
                             streaming, streaming_layers)
from tests.helpers import small_config


def _flags(net: torch.nn.Module) -> list[bool]:
    return [m.training for m in net.modules()]


def _states(net: torch.nn.Module) -> list[object]:
    return [layer.streaming_state for layer in streaming_layers(net)]


def _mixed_training_net() -> model.RQVAESeparator:
    """A separator in training mode with one submodule left in eval mode (as a frozen part would be)."""
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config(mixture_consistency=True)).train()
    net.encoder[0].eval()
    return net


def test_streaming_context_restores_training_flags_and_states():
    net = _mixed_training_net()
    flags = _flags(net)
    assert len(set(flags)) == 2
    with net.streaming(3) as inside:
        assert inside is net
        assert not any(_flags(net))
        states = _states(net)
        assert all(s is not None for s in states) and len(states) >= 8
        conv = net.encoder[0].down.streaming_state
        assert isinstance(conv, ConvState) and conv.context.shape == (3, 1, net.encoder[0].down.context_samples)
        assert isinstance(net.temporal.streaming_state, RecurrentState)
    assert _flags(net) == flags
    assert all(s is None for s in _states(net))


def test_streaming_context_restores_after_an_error_and_when_nested():
    net = _mixed_training_net()
    flags = _flags(net)
    with pytest.raises(RuntimeError, match="boom"):
        with net.streaming(2):
            raise RuntimeError("boom")
    assert _flags(net) == flags and all(s is None for s in _states(net))
    with net.streaming(2):
        outer = _states(net)
        with net.streaming(1):
            assert all(a is not b for a, b in zip(outer, _states(net)))
            assert net.temporal.streaming_state.hidden.shape[1] == 1
        assert all(a is b for a, b in zip(outer, _states(net)))  # the enclosing stream's own states
        assert not any(_flags(net))
    assert _flags(net) == flags and all(s is None for s in _states(net))


def test_states_are_allocated_once_and_updated_in_place():
    """The same tensors carry the state from call to call and through reset (what CUDA-graph capture
    needs); the state changes their values, and reset zeros them."""
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config()).eval()
    x = torch.randn(2, 1, 4 * net.frame_size)
    with torch.no_grad(), net.streaming(2):
        before = [(s, [a.data_ptr() for a in s.arrays()]) for s in _states(net)]
        net(x)
        assert any(float(a.abs().max()) > 0 for s, _ in before for a in s.arrays() if a.numel())
        reset_streaming(net)
        net(x[..., :net.frame_size])
        for (state, ptrs), now in zip(before, _states(net)):
            assert now is state and [a.data_ptr() for a in now.arrays()] == ptrs
        reset_streaming(net)
        assert all(float(a.abs().max()) == 0 for s, _ in before for a in s.arrays() if a.numel())


def test_a_layer_without_a_state_declaration_says_so():
    class Stateless(StreamingModule):
        pass

    with pytest.raises(NotImplementedError, match="Stateless must implement _init_streaming_state"):
        with Stateless().streaming(1):
            pass
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        with streaming(CausalConv1d(1, 1, 2), 0):
            pass


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_streaming_on_another_device_moves_the_network_back():
    net = _mixed_training_net()
    flags = _flags(net)
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad(), net.streaming(2, device="cuda"):
        assert {p.device.type for p in net.parameters()} == {"cuda"}
        assert net.temporal.streaming_state.hidden.device.type == "cuda"
        net(torch.zeros(2, 1, net.frame_size, device="cuda"))
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert _flags(net) == flags and all(s is None for s in _states(net))
    for k, v in net.state_dict().items():
        assert torch.equal(v, weights[k]), k


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_the_runtime_leaves_the_callers_network_unchanged(backend, rng):
    net = _mixed_training_net()
    flags = _flags(net)
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    rt = model.StreamingSeparator(net, backend=backend)
    x = (0.3 * rng.standard_normal((2, 1000))).astype(np.float32)
    rt.process(x)
    stems = rt.separate(x)
    rt.process(x[:1])  # after separate's reset: another channel count
    assert _flags(net) == flags
    assert all(s is None for s in _states(net))
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    for k, v in net.state_dict().items():
        assert torch.equal(v, weights[k]), k
    # and the caller's network, still in training mode, is not what the runtime ran
    assert rt.model is not net and not rt.model.training
    np.testing.assert_array_equal(model.StreamingSeparator(net, backend=backend).separate(x), stems)
