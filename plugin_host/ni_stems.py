"""Native Instruments stem files (``.stem.mp4``): a mixture and four stems as AAC streams in one MP4.

ffmpeg muxes the five streams (stream 0, the mixture, is the default one that ordinary players
play); the stem names and colours go in a JSON document inside a ``stem`` box in ``moov/udta``,
which is where Traktor and other DJ software read them (NI's own tool writes it with
``MP4Box -udta 0:type=stem``). ffmpeg cannot write that box, so it is added here, after the
file is muxed with its ``moov`` box after the media data, so that no sample offset moves.
"""
from __future__ import annotations

import json
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_io import Audio, decode_stream, probe_streams, require_ffmpeg, run_tool, write_audio

STEM_COUNT = 4
AAC_BITRATE = "256k"
DEFAULT_COLORS = {"drums": "#009E73", "bass": "#D55E00", "other": "#CC79A7", "vocals": "#56B4E9",
                  "guitar": "#E69F00", "piano": "#F0E442"}
FALLBACK_COLORS = ("#0072B2", "#E69F00", "#F0E442", "#999999")
# NI's default mastering section (compressor and limiter off), as its stem creator writes it
MASTERING_DSP = {
    "compressor": {"enabled": False, "input_gain": 0.5, "output_gain": 0.5, "threshold": 0, "dry_wet": 50,
                   "attack": 0.003, "release": 0.3, "ratio": 3, "hp_cutoff": 300},
    "limiter": {"enabled": False, "threshold": 0, "ceiling": -0.35, "release": 0.05},
}


@dataclass(frozen=True)
class StemFileInfo:
    """What a stem file says about itself: names and colours from its ``stem`` box, and its streams."""

    names: tuple[str, ...]
    colors: tuple[str, ...]
    metadata: dict            # the whole JSON document of the ``stem`` box
    stream_titles: tuple[str, ...]  # ffprobe's per-stream handler names, mixture first
    sample_rate_hz: int
    codec: str


def stem_metadata(names: tuple[str, ...]) -> dict:
    """The NI ``stem`` box JSON for four stems named ``names`` (order = streams 1..4)."""
    colors, spare = [], iter(FALLBACK_COLORS)
    for name in names:
        colors.append(DEFAULT_COLORS.get(name.lower()) or next(spare))
    return {"version": 1, "mastering_dsp": MASTERING_DSP,
            "stems": [{"name": n, "color": c} for n, c in zip(names, colors)]}


def write_stem_file(path: str | Path, mixture: np.ndarray, stems: dict[str, np.ndarray], sample_rate_hz: int) -> Path:
    """Write ``mixture [C, T]`` and exactly four ``stems {name: [C, T]}`` as a ``.stem.mp4``."""
    if len(stems) != STEM_COUNT:
        raise ValueError(f"a .stem.mp4 holds exactly {STEM_COUNT} stems, got {len(stems)} ({', '.join(stems)}); "
                         "choose four with --stems, or write wav/flac instead")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = tuple(stems)
    ffmpeg = require_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="stemstream-") as tmp:
        inputs = []
        for i, signal in enumerate([mixture, *stems.values()]):
            wav = Path(tmp) / f"{i}.wav"
            write_audio(wav, signal, sample_rate_hz)
            inputs += ["-i", str(wav)]
        muxed = Path(tmp) / "muxed.mp4"
        args = [ffmpeg, "-v", "error", "-y", *inputs]
        for i in range(STEM_COUNT + 1):
            args += ["-map", f"{i}:a"]
        args += ["-c:a", "aac", "-b:a", AAC_BITRATE, "-f", "mp4"]
        for i, title in enumerate(("mixture", *names)):
            args += [f"-metadata:s:a:{i}", f"handler_name={title}", f"-disposition:a:{i}", "default" if i == 0 else "0"]
        run_tool([*args, str(muxed)])
        data = add_udta_box(muxed.read_bytes(), b"stem", json.dumps(stem_metadata(names)).encode())
        path.write_bytes(data)
    return path


def read_stem_file_info(path: str | Path) -> StemFileInfo:
    """Names from the ``stem`` box and the streams as ffprobe sees them."""
    raw = find_udta_box(Path(path).read_bytes(), b"stem")
    if raw is None:
        raise ValueError(f"{path} has no NI 'stem' metadata box (moov/udta/stem): not a stem file")
    meta = json.loads(raw)
    streams = [s for s in probe_streams(path) if s.get("codec_type") == "audio"]
    return StemFileInfo(
        names=tuple(s["name"] for s in meta["stems"]), colors=tuple(s["color"] for s in meta["stems"]),
        metadata=meta, stream_titles=tuple(s.get("tags", {}).get("handler_name", "") for s in streams),
        sample_rate_hz=int(streams[0]["sample_rate"]), codec=streams[0]["codec_name"])


def read_stem_file(path: str | Path) -> dict[str, Audio]:
    """Every stream of a stem file decoded, keyed ``"mixture"`` then the stems' names."""
    info = read_stem_file_info(path)
    return {name: decode_stream(path, i) for i, name in enumerate(("mixture", *info.names))}


# ---------------------------------------------------------------------------- MP4 boxes
def _boxes(data: bytes, start: int, end: int):
    """``(type, box_start, header_size, box_end)`` of each box in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"malformed MP4: box {kind!r} at byte {pos} has size {size}")
        yield kind, pos, header, pos + size
        pos += size


def _find(data: bytes, start: int, end: int, kind: bytes):
    return next((b for b in _boxes(data, start, end) if b[0] == kind), None)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def add_udta_box(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """``data`` (an MP4 whose ``moov`` follows its ``mdat``) with ``moov/udta/<kind>`` added."""
    moov = _find(data, 0, len(data), b"moov")
    mdat = _find(data, 0, len(data), b"mdat")
    if moov is None or mdat is None:
        raise ValueError("not an MP4 with moov and mdat boxes")
    if moov[1] < mdat[1]:
        raise ValueError("the moov box precedes mdat: adding to it would move every sample offset")
    _, m_start, m_header, m_end = moov
    if m_header != 8:
        raise ValueError("a 64-bit moov box is not supported")
    new_box = _box(kind, payload)
    udta = _find(data, m_start + m_header, m_end, b"udta")
    if udta is None:
        body = data[m_start + 8:m_end] + _box(b"udta", new_box)
    else:
        _, u_start, u_header, u_end = udta
        grown = _box(b"udta", data[u_start + u_header:u_end] + new_box)
        body = data[m_start + 8:u_start] + grown + data[u_end:m_end]
    return data[:m_start] + _box(b"moov", body) + data[m_end:]


def find_udta_box(data: bytes, kind: bytes) -> bytes | None:
    """Payload of ``moov/udta/<kind>``, or None."""
    moov = _find(data, 0, len(data), b"moov")
    if moov is None:
        return None
    udta = _find(data, moov[1] + moov[2], moov[3], b"udta")
    if udta is None:
        return None
    box = _find(data, udta[1] + udta[2], udta[3], kind)
    return None if box is None else data[box[1] + box[2]:box[3]]
