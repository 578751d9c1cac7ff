"""Streaming equals offline, causality, reset and non-finite input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model
from model.streaming import CausalConv1d, CausalConvTranspose1d, SampleDelay, StreamingLSTM, streaming
from tests.helpers import small_config


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def feed(rt: model.StreamingSeparator, x: np.ndarray, lengths) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < x.shape[1]:
        n = lengths[k % len(lengths)]
        out.append(rt.process(x[:, i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out, axis=-1)


BLOCKS = {
    "one_sample": [1],
    "primes": [3, 7, 13, 31, 97, 211],
    "many_frames": [1000, 1, 4097, 65],
}


@pytest.mark.parametrize("blocks", BLOCKS.values(), ids=BLOCKS.keys())
@pytest.mark.parametrize("cfg", [small_config(), small_config(output="waveform", temporal="conv", temporal_layers=2),
                                 small_config(mixture_consistency=True),
                                 small_config(mixture_consistency=True, analysis_kernel_factor=4),
                                 small_config(mixture_consistency=True, level_generator=True),
                                 small_config(mixture_consistency=True, level_generator=True, basis_channels=12)],
                         ids=["mask_lstm", "waveform_conv", "mask_lstm_consistent", "long_analysis", "level_generator",
                              "wider_basis"])
@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_streaming_equals_offline(cfg, blocks, backend, rng):
    torch.manual_seed(0)
    net = model.RQVAESeparator(cfg).eval()
    if cfg.level_generator:
        with torch.no_grad():
            net.generator.normal_()  # zero at initialisation: make it count
    x = (0.3 * rng.standard_normal((2, 3000))).astype(np.float32)
    n = x.shape[1]
    delay = cfg.output_delay_samples
    padded = np.pad(x, ((0, 0), (0, -(n + delay) % cfg.frame_size + delay)))
    with torch.no_grad():  # the network lags by its output delay: align it with the input
        offline = net(torch.from_numpy(padded).unsqueeze(1)).stems.transpose(0, 1).numpy()[..., delay:delay + n]
    rt = model.StreamingSeparator(net, backend=backend)
    assert rt.backend == backend
    assert rt.latency_samples == cfg.frame_size - 1 + delay
    assert rel_err(rt.separate(x), offline) < 1e-5
    streamed = feed(rt, x, blocks)
    assert streamed.shape == (len(cfg.stems), 2, n)
    lat = rt.latency_samples
    assert np.all(streamed[..., :cfg.frame_size - 1] == 0)  # nothing before the first frame ran
    assert rel_err(streamed[..., lat:], offline[..., :n - lat]) < 1e-5


LAYERS = {
    "conv_strided": (lambda: CausalConv1d(3, 5, 8, stride=4), 3, 4),
    "conv_dilated": (lambda: CausalConv1d(3, 5, 3, dilation=3), 3, 1),
    "conv_transpose": (lambda: CausalConvTranspose1d(3, 5, 8, 4), 3, 1),
    "conv_transpose_grouped": (lambda: CausalConvTranspose1d(4, 2, 8, 4, groups=2), 4, 1),
    "lstm": (lambda: StreamingLSTM(3, 2), 3, 1),
    "delay": (lambda: SampleDelay(3, 5), 3, 1),  # pieces of 1 and 2 samples: shorter than the delay
}


@pytest.mark.parametrize("make,channels,stride", LAYERS.values(), ids=LAYERS.keys())
def test_each_streaming_layer_alone(make, channels, stride):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(2, channels, 96 * stride)
    with torch.no_grad():
        whole = layer(x)
        parts, i = [], 0
        with layer.streaming(2):
            for frames in [1, 2, 5, 1, 40, 3, 44]:  # 96 frames, cell-by-cell and fused LSTM paths
                parts.append(layer(x[..., i:i + frames * stride]))
                i += frames * stride
    streamed = torch.cat(parts, dim=-1)
    assert rel_err(streamed.numpy(), whole.numpy()) < 1e-5


@pytest.mark.parametrize("output", ["mask", "waveform"])
def test_mixture_consistency_makes_the_stems_sum_to_the_mixture(output, rng):
    torch.manual_seed(0)
    net = model.RQVAESeparator(small_config(output=output, mixture_consistency=True)).eval()
    for p in net.parameters():  # far from the initial near-identity, so the correction matters
        p.data.add_(0.3 * torch.randn_like(p))
    x = (0.3 * rng.standard_normal((2, 32 * 40))).astype(np.float32)
    delay = net.config.output_delay_samples
    with torch.no_grad():
        stems = net(torch.from_numpy(x).unsqueeze(1)).stems  # [C, S, T], lagging by delay
        plain = model.RQVAESeparator(small_config(output=output))
        plain.load_state_dict(net.state_dict())
        uncorrected = plain.eval()(torch.from_numpy(x).unsqueeze(1)).stems
    delayed = np.pad(x, ((0, 0), (delay, 0)))[:, :x.shape[1]]
    np.testing.assert_allclose(stems.sum(1).numpy(), delayed, atol=1e-5)
    assert rel_err(uncorrected.sum(1).numpy(), delayed) > 0.1
    # the correction is the same share for every stem
    share = (stems - uncorrected).numpy()
    np.testing.assert_allclose(share, np.broadcast_to(share[:, :1], share.shape), atol=1e-6)
    streamed = model.StreamingSeparator(net).separate(x)  # [S, C, T], aligned with x
    np.testing.assert_allclose(streamed.sum(0), x, atol=1e-5)


def test_conv_transpose_matches_torch():
    torch.manual_seed(0)
    layer = CausalConvTranspose1d(6, 4, 8, 4, groups=2)
    x = torch.randn(3, 6, 10)
    with torch.no_grad():
        ref = layer.conv(x)[..., :40]
        assert rel_err(layer(x).numpy(), ref.numpy()) < 1e-6


@pytest.mark.parametrize("t", [1024, 1111])
def test_causality(small_model, rng, t):
    """Input changed from sample t changes no output before t + latency for t on a frame
    boundary; inside a frame, the frame's start counts (the model is causal per frame)."""
    rt = model.StreamingSeparator(small_model)
    x = (0.3 * rng.standard_normal((1, 2000))).astype(np.float32)
    y = x.copy()
    y[:, t:] = (0.3 * rng.standard_normal((1, 2000 - t))).astype(np.float32)
    a = feed(rt, x, [37])
    rt.reset()
    b = feed(rt, y, [37])
    cut = t // rt.frame_size * rt.frame_size + rt.latency_samples - rt.config.output_delay_samples
    assert cut <= t + rt.latency_samples
    np.testing.assert_array_equal(a[..., :cut], b[..., :cut])
    assert not np.allclose(a[..., cut:cut + rt.frame_size], b[..., cut:cut + rt.frame_size])


def test_offline_separation_is_causal(small_model, rng):
    """Without streaming delay, output before t never depends on input after t."""
    rt = model.StreamingSeparator(small_model)
    x = (0.3 * rng.standard_normal((1, 2048))).astype(np.float32)
    y = x.copy()
    y[:, 1024:] = 0.0  # a frame boundary; aligned output may use the output delay's samples
    end = 1024 - rt.config.output_delay_samples
    np.testing.assert_allclose(rt.separate(x)[..., :end], rt.separate(y)[..., :end], rtol=0, atol=1e-6)


def test_reset_restores_initial_state(small_model, rng):
    rt = model.StreamingSeparator(small_model)
    x = (0.3 * rng.standard_normal((2, 777))).astype(np.float32)
    first = feed(rt, x, [50])
    feed(rt, (rng.standard_normal((2, 333))).astype(np.float32), [11])
    rt.reset()
    np.testing.assert_array_equal(feed(rt, x, [50]), first)


def test_nonfinite_input_is_zeroed_and_counted(small_model, rng):
    rt = model.StreamingSeparator(small_model)
    x = (0.3 * rng.standard_normal((2, 2000))).astype(np.float32)
    bad = x.copy()
    bad[0, 100] = np.nan
    bad[1, 200:203] = np.inf
    bad[0, 300] = -np.inf
    out = feed(rt, bad, [64])
    assert np.isfinite(out).all()
    assert rt.nonfinite_samples == 5
    clean = x.copy()
    clean[~np.isfinite(bad)] = 0.0
    rt.reset()
    np.testing.assert_array_equal(out, feed(rt, clean, [64]))
    assert rt.nonfinite_samples == 0


def test_empty_and_one_sample_blocks(small_model):
    rt = model.StreamingSeparator(small_model)
    assert rt.process(np.zeros((2, 0), np.float32)).shape == (4, 2, 0)
    assert rt.process(np.zeros((2, 1), np.float32)).shape == (4, 2, 1)


@pytest.mark.parametrize("bad,err", [
    (np.zeros((2, 10), np.int16), TypeError),
    (np.zeros(10, np.float32), ValueError),
    (np.zeros((1, 2, 10), np.float32), ValueError),
])
def test_bad_input_raises_clear_errors(small_model, bad, err):
    rt = model.StreamingSeparator(small_model)
    with pytest.raises(err, match="audio"):
        rt.process(bad)


def test_channel_change_mid_stream_is_refused(small_model):
    rt = model.StreamingSeparator(small_model)
    rt.process(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="reset"):
        rt.process(np.zeros((1, 10), np.float32))
    rt.reset()
    assert rt.process(np.zeros((1, 10), np.float32)).shape == (4, 1, 10)


def test_unknown_stem_lists_model_stems(small_model):
    rt = model.StreamingSeparator(small_model)
    with pytest.raises(ValueError, match="bass, drums, guitar, piano"):
        rt.stem_index("vocals")


def test_non_causal_model_cannot_stream():
    net = model.RQVAESeparator(small_config(causal=False, temporal="bilstm"))
    with pytest.raises(ValueError, match="non-causal"):
        model.StreamingSeparator(net)
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 64)).stems.shape == (1, 4, 64)


def test_cuda_request_without_cuda_is_clear(small_model):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present on this machine")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        model.StreamingSeparator(small_model, device="cuda")


@pytest.mark.parametrize("causal", [True, False])
def test_output_lags_input_by_output_delay_samples(causal):
    """An untrained model passes the mixture through: its output peaks in cross-correlation
    with the input at exactly ``output_delay_samples`` (0 with symmetric padding)."""
    config = small_config(causal=causal, temporal="lstm" if causal else "bilstm")
    net = model.RQVAESeparator(config).eval()
    x = torch.randn(1, 1, 64 * 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x).stems.sum(1)[0].numpy()
    xs = x[0, 0].numpy()
    lags = range(0, 33)
    corr = [float(np.dot(y[lag:], xs[:len(xs) - lag])) for lag in lags]
    assert int(np.argmax(corr)) == config.output_delay_samples
    assert (config.output_delay_samples > 0) == causal


def test_a_longer_analysis_starts_as_the_symmetric_model_with_the_same_latency():
    """``analysis_kernel_factor``: the analysis basis starts as the symmetric model's on its newest
    taps and zeros on the older ones, so the untrained model is the symmetric one; the synthesis
    and the latency do not change."""
    short, long = small_config(mixture_consistency=True), small_config(mixture_consistency=True, analysis_kernel_factor=4)
    assert long.latency_samples == short.latency_samples and long.output_delay_samples == short.output_delay_samples
    torch.manual_seed(0)
    symmetric = model.RQVAESeparator(short).eval()
    asymmetric = model.RQVAESeparator(long).eval()
    kernel = short.kernel_factor * short.strides[0]
    w = asymmetric.encoder[0].down.conv.weight
    assert w.shape[-1] == long.analysis_kernel_samples == 4 * short.strides[0]
    assert torch.equal(w[..., :-kernel], torch.zeros_like(w[..., :-kernel]))
    assert torch.equal(w[..., -kernel:], symmetric.encoder[0].down.conv.weight)
    weights = symmetric.state_dict()
    weights["encoder.0.down.conv.weight"] = w.detach().clone()
    asymmetric.load_state_dict(weights)
    x = torch.randn(1, 1, short.frame_size * 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(asymmetric(x).stems, symmetric(x).stems)
    with pytest.raises(ValueError, match="analysis_kernel_factor must be >= kernel_factor"):
        small_config(analysis_kernel_factor=1)
