"""The numba frame step equals the torch streaming path: outputs, buffering, reset, n_q, NaN, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import model
from model.bench import main as bench
from model.blocks import CausalConvStack, ResidualUnit
from model.numba_step import NumbaFrameStep
from model.streaming import StreamingState
from tests.helpers import small_config
from tests.model.test_streaming import feed

BLOCKS = [1, 37, 128, 300]  # irregular blocks: buffering within and across frames
FRAMES = 48


def random_net(**overrides) -> model.RQVAESeparator:
    """Random weights of ``small_config``, with random (not near-constant) masks so that the
    output depends on the decoder and the quantizer, not only on the analysis/synthesis pair."""
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config(**overrides)).eval()
    if net.config.output == "mask":
        with torch.no_grad():
            net.mask.conv.weight.normal_(0.0, 0.5)
    return net


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The torch reference on one thread, as the engine's worker runs it (on a busy two-core
    machine two intra-op threads contend, and the reference runs many times slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def musdb4() -> model.RQVAESeparator:
    return model.load_separator("musdb4")


def signal(channels: int, n: int, seed: int = 0) -> np.ndarray:
    """Noise plus a sum of sines ``[channels, n]`` float32 (channels differ)."""
    t = np.arange(n) / 22050
    tones = sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in [(0.3, 110.0, 0.0), (0.2, 440.0, 1.0),
                                                                   (0.1, 1870.0, 2.0)])
    noise = 0.1 * np.random.default_rng(seed).standard_normal((channels, n))
    return (tones + noise).astype(np.float32)


def assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal within float32 rounding: max abs difference <= 1e-4 of the signal's peak."""
    scale = float(np.abs(expected).max())
    assert scale > 1e-3
    assert got.shape == expected.shape
    assert float(np.abs(got - expected).max()) <= 1e-4 * scale


def stream_both(net: model.RQVAESeparator, x: np.ndarray, n_q: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` fed in ``BLOCKS`` through the numba and the torch runtime: ``(numba, torch) [S, C, T]``."""
    numba_rt = model.StreamingSeparator(net, n_q=n_q, backend="numba")
    torch_rt = model.StreamingSeparator(net, n_q=n_q, backend="torch")
    return feed(numba_rt, x, BLOCKS), feed(torch_rt, x, BLOCKS)


NETS = {
    "mask_lstm": {},
    "waveform_conv": dict(output="waveform", temporal="conv", temporal_layers=2),
    "mask_none_2units": dict(temporal="none", residual_dilations=(1, 2)),
    "mask_lstm2": dict(temporal_layers=2),
    "mask_lstm_consistent": dict(mixture_consistency=True),
    "waveform_consistent": dict(output="waveform", mixture_consistency=True),
    "strides_435": dict(strides=(4, 3, 5)),
    "strides_435_consistent": dict(strides=(4, 3, 5), mixture_consistency=True),
    "biased_basis": dict(bias_free_masking=False),
    "biased_basis_consistent": dict(bias_free_masking=False, mixture_consistency=True),
}


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("overrides", NETS.values(), ids=NETS.keys())
def test_random_weights_match_torch(overrides, channels):
    net = random_net(**overrides)
    got, expected = stream_both(net, signal(channels, FRAMES * net.frame_size))
    assert_close(got, expected)


def test_a_longer_trained_analysis_matches_torch():
    net = random_net(analysis_kernel_factor=4, mixture_consistency=True)
    with torch.no_grad():
        net.encoder[0].down.conv.weight.normal_(0.0, 0.3)  # every tap in use, the older ones too
    got, expected = stream_both(net, signal(2, FRAMES * net.frame_size))
    assert_close(got, expected)


@pytest.mark.parametrize("basis_channels", [None, 12])
@pytest.mark.parametrize("strides", [(4, 2, 4), (4, 3, 5)])
@pytest.mark.parametrize("channels", [1, 2])
def test_a_level_generator_matches_torch(strides, channels, basis_channels):
    """With a wider basis (``basis_channels``) too: the masks, level and synthesis span its rows."""
    net = random_net(level_generator=True, mixture_consistency=True, strides=strides, basis_channels=basis_channels)
    with torch.no_grad():
        net.generator.normal_(0.0, 2.0)
    got, expected = stream_both(net, signal(channels, FRAMES * net.frame_size))
    without = random_net(mixture_consistency=True, strides=strides)
    assert np.abs(expected - stream_both(without, signal(channels, FRAMES * net.frame_size))[1]).max() > 0.01
    assert_close(got, expected)


@pytest.mark.parametrize("channels", [1, 2])
def test_shipped_musdb4_matches_torch(channels):
    x = signal(channels, FRAMES * 128, seed=channels)
    got = feed(model.load("musdb4", backend="numba"), x, BLOCKS)
    expected = feed(model.load("musdb4", backend="torch"), x, BLOCKS)
    assert_close(got, expected)


def test_separate_matches_torch(musdb4):
    x = signal(2, 5000)
    assert_close(model.StreamingSeparator(musdb4, backend="numba").separate(x),
                 model.StreamingSeparator(musdb4, backend="torch").separate(x))


@pytest.mark.parametrize("n_q", [1, 3])
def test_fewer_quantizers_match_torch_with_the_same_n_q(musdb4, n_q):
    x = signal(1, FRAMES * 128)
    got, expected = stream_both(musdb4, x, n_q=n_q)
    assert_close(got, expected)
    full, _ = stream_both(musdb4, x[:, :20 * 128])
    assert np.abs(got[..., :20 * 128] - full).max() > 1e-3 * np.abs(full).max()  # n_q matters: 10x the tolerance


def test_reset_equals_a_fresh_instance():
    net = random_net()
    x, other = signal(2, 20 * 32), signal(2, 333, seed=5)
    fresh = feed(model.StreamingSeparator(net, backend="numba"), x, BLOCKS)
    rt = model.StreamingSeparator(net, backend="numba")
    feed(rt, other, [50])
    rt.reset()
    np.testing.assert_array_equal(feed(rt, x, BLOCKS), fresh)

    step = NumbaFrameStep(net, channels=2)
    out, first = np.zeros((4, 2, 32), np.float32), np.zeros((4, 2, 32), np.float32)
    step.step(x[:, :32], first)
    step.step(x[:, 32:64], out)
    step.reset()
    step.step(x[:, :32], out)
    np.testing.assert_array_equal(out, first)


def test_gil_keeping_kernels_give_the_same_samples():
    from model.numba_step import kernels

    net = random_net()
    x = signal(2, 10 * 32)
    releasing, keeping = NumbaFrameStep(net, channels=2), NumbaFrameStep(net, channels=2, release_gil=False)
    assert kernels(False).lstm is not kernels(True).lstm and keeping.release_gil is False
    a, b = np.zeros((4, 2, 32), np.float32), np.zeros((4, 2, 32), np.float32)
    for i in range(10):
        releasing.step(x[:, 32 * i:32 * (i + 1)], a)
        keeping.step(x[:, 32 * i:32 * (i + 1)], b)
        np.testing.assert_array_equal(a, b)
    keeping.use_kernels(True)  # switching mid-stream keeps the state
    releasing.step(x[:, :32], a)
    keeping.step(x[:, :32], b)
    np.testing.assert_array_equal(a, b)


def test_step_takes_and_fills_strided_views():
    net = random_net()
    step = NumbaFrameStep(net, channels=2)
    x = signal(2, 64)
    out = np.zeros((4, 2, 64), np.float32)
    step.step(x[:, :32], out[:, :, :32])  # strided input and output views
    step.step(x[:, 32:], out[:, :, 32:])
    reference = NumbaFrameStep(net, channels=2)
    contiguous = np.zeros((4, 2, 32), np.float32)
    reference.step(np.ascontiguousarray(x[:, :32]), contiguous)
    np.testing.assert_array_equal(out[:, :, :32], contiguous)
    with pytest.raises(ValueError, match="bound to 2 channel"):
        step.step(x[:1, :32], out[:, :1, :32])


def test_nonfinite_input_is_zeroed_counted_and_forgotten():
    net = random_net()
    x = signal(2, FRAMES * 32)
    bad = x.copy()
    bad[0, 100], bad[1, 200:203], bad[0, 300] = np.nan, np.inf, -np.inf
    numba_rt = model.StreamingSeparator(net, backend="numba")
    torch_rt = model.StreamingSeparator(net, backend="torch")
    got, expected = feed(numba_rt, bad, BLOCKS), feed(torch_rt, bad, BLOCKS)
    assert np.isfinite(got).all()
    assert numba_rt.nonfinite_samples == torch_rt.nonfinite_samples == 5
    assert_close(got, expected)
    clean = np.where(np.isfinite(bad), bad, 0.0).astype(np.float32)
    numba_rt.reset()
    np.testing.assert_array_equal(feed(numba_rt, clean, BLOCKS), got)
    assert numba_rt.nonfinite_samples == 0


def test_unsupported_combinations_raise_clear_errors():
    net = random_net()
    with pytest.raises(ValueError, match="unknown backend .jax.; choose from auto, torch, numba"):
        model.StreamingSeparator(net, backend="jax")
    with pytest.raises(ValueError, match="backend 'numba' runs on the CPU only.*device='cpu'"):
        model.StreamingSeparator(net, device="cuda", backend="numba")
    with pytest.raises(ValueError, match="backend 'numba' runs on the CPU only"):
        model.load("musdb4", device="cuda", backend="numba")
    with pytest.raises(ValueError, match="config.causal is False"):
        NumbaFrameStep(model.RQVAESeparator(small_config(causal=False, temporal="bilstm")).eval())
    with pytest.raises(ValueError, match="training mode"):
        NumbaFrameStep(model.RQVAESeparator(small_config()).train())
    with pytest.raises(ValueError, match="n_q must be between 1 and 4"):
        model.StreamingSeparator(net, n_q=5, backend="numba")
    rt = model.StreamingSeparator(net, backend="numba")  # channel binding as with torch
    rt.process(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="reset"):
        rt.process(np.zeros((1, 10), np.float32))
    rt.reset()
    assert rt.process(np.zeros((1, 40), np.float32)).shape == (4, 1, 40)
    assert rt.stem_index("drums") == 1 and rt.latency_samples == model.StreamingSeparator(net, backend="torch").latency_samples


def test_auto_backend_is_numba_on_the_cpu():
    net = model.RQVAESeparator(small_config()).eval()
    assert model.StreamingSeparator(net).backend == "numba"
    assert model.StreamingSeparator(net, backend="torch").backend == "torch"


def test_musdb4_v2_config_matches_torch():
    """The musdb4-v2 architecture (strides 8, 3, 5: frame 120; mixture consistency), random weights."""
    config = model.SeparatorConfig.load(Path(__file__).parents[2] / "docs/models/musdb4-v2/config.json")
    assert config.strides == (8, 3, 5) and config.mixture_consistency
    torch.manual_seed(0)
    net = model.RQVAESeparator(config).eval()
    with torch.no_grad():
        net.mask.conv.weight.normal_(0.0, 0.5)
    got, expected = stream_both(net, signal(2, 24 * net.frame_size))
    assert_close(got, expected)


def test_the_step_follows_the_networks_modules_not_its_config():
    """Layers changed in the network (a level with one more residual unit, a conv stack where the
    config says lstm) run in the numba step as they run in torch, with no change to the step."""
    net = random_net()
    assert net.config.temporal == "lstm"
    torch.manual_seed(1)
    net.encoder[1].units.append(ResidualUnit(16, 3, 2, causal=True))
    net.decoder[0].units.append(ResidualUnit(16, 3, 4, causal=True))
    net.temporal = CausalConvStack(16, 2, 3)
    got, expected = stream_both(net.eval(), signal(2, FRAMES * net.frame_size))
    assert_close(got, expected)
    untouched, _ = stream_both(random_net(), signal(2, FRAMES * net.frame_size))
    assert np.abs(got - untouched).max() > 1e-2 * np.abs(untouched).max()


class _Gain(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x


def test_a_layer_the_step_cannot_run_is_refused_by_name():
    net = random_net()
    net.temporal = _Gain()
    with pytest.raises(ValueError, match=r"no kernel for temporal \(_Gain\).*backend='torch'"):
        NumbaFrameStep(net)
    net = random_net()
    net.encoder[1].gain = _Gain()  # a child its level's numba layer does not know
    with pytest.raises(ValueError, match=r"does not run encoder\.1\.gain of this network"):
        NumbaFrameStep(net)
    assert model.StreamingSeparator(net, backend="torch").process(np.zeros((1, 64), np.float32)).shape == (4, 1, 64)


def test_states_follow_the_streaming_state_contract():
    """Every state is a StreamingState of arrays, allocated by bind, carried by the step and zeroed
    in place by reset."""
    step = NumbaFrameStep(random_net(mixture_consistency=True), channels=2)
    states = step.states()
    assert len(states) >= 8 and all(isinstance(s, StreamingState) for s in states)
    arrays = [a for s in states for a in s.arrays()]
    out = np.zeros((4, 2, 32), np.float32)
    for i in range(3):
        step.step(signal(2, 32, seed=i), out)
    assert all(np.abs(a).max() > 0 for a in arrays)
    step.reset()
    assert all(np.abs(a).max() == 0 for a in arrays)
    assert [id(a) for a in arrays] == [id(a) for s in step.states() for a in s.arrays()]


def test_kernel_times_run_the_step_itself(tmp_path):
    net = random_net(level_generator=True, mixture_consistency=True)
    rng = np.random.default_rng(5)
    frames = (0.1 * rng.standard_normal((6, 2, net.frame_size))).astype(np.float32)
    stepped, timed = NumbaFrameStep(net, channels=2), NumbaFrameStep(net, channels=2)
    out = np.zeros((len(net.config.stems), 2, net.frame_size), np.float32)
    for frame in frames:
        stepped.step(frame, out)
    times = timed.kernel_times_s(frames)
    assert [name for name, _ in times][0] == "causal_conv" and times[-1][0] == "mixture_consistency"
    assert "masked_synthesis" in dict(times) and all(t > 0 for _, t in times)
    following = (0.1 * rng.standard_normal((2, net.frame_size))).astype(np.float32)
    expected, got = np.empty_like(out), np.empty_like(out)
    stepped.step(following, expected)
    timed.step(following, got)
    np.testing.assert_array_equal(got, expected)  # the timed run advanced the state exactly as step
    with pytest.raises(ValueError, match="expected frames"):
        timed.kernel_times_s(frames[:, :1])
    path = model.save_separator(net, tmp_path / "net")
    assert bench(["--model", str(path), "--json", str(tmp_path / "b.json"), "--kernels", "--frames", "5"]) == 0
    result = json.loads((tmp_path / "b.json").read_text())["numba_kernels"]
    assert result["frames"] == 5 and len(result["kernels"]) == len(times)
    assert sum(k["share"] for k in result["kernels"]) == pytest.approx(1.0)
    assert result["mean_load"] == pytest.approx(result["total_us"] / result["frame_us"])
