"""Native Instruments stem files (``.stem.mp4``): a mixture and four stems as AAC streams in one MP4.

ffmpeg muxes the five streams (stream 0, the mixture, is the default one that ordinary players
play); the stem names and colours go in a JSON document inside a ``stem`` box in ``moov/udta``,
which is where Traktor and other DJ software read them (NI's own tool writes it with
``MP4Box -udta 0:type=stem``). ffmpeg cannot write that box, so it is added here, after the
file is muxed with its ``moov`` box after the media data, so that no sample offset moves.
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.audio_io import Audio, probe_streams, read_audio, require_ffmpeg, run_tool

from .audio_io import write_audio

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
    check_stem_count(tuple(stems))
    with tempfile.TemporaryDirectory(prefix="stemstream-") as tmp:
        sources = [write_audio(Path(tmp) / f"{i}.wav", signal, sample_rate_hz)
                   for i, signal in enumerate([mixture, *stems.values()])]
        return mux_stem_file(path, sources[0], dict(zip(stems, sources[1:])))


def check_stem_count(names: tuple[str, ...]) -> None:
    if len(names) != STEM_COUNT:
        raise ValueError(f"a .stem.mp4 holds exactly {STEM_COUNT} stems, got {len(names)} ({', '.join(names)}); "
                         "choose four with --stems, or write wav/flac instead")


def mux_stem_file(path: str | Path, mixture: Path, stems: dict[str, Path]) -> Path:
    """Encode the audio files ``mixture`` and four ``stems {name: file}`` into the stem file ``path``.

    ffmpeg reads the files itself and the metadata box is added by copying (never holding the
    file in memory), so this works for inputs of any length.
    """
    names = tuple(stems)
    check_stem_count(names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = require_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="stemstream-", dir=path.parent) as tmp:
        inputs = []
        for source in (mixture, *stems.values()):
            inputs += ["-i", str(source)]
        muxed = Path(tmp) / "muxed.mp4"
        args = [ffmpeg, "-v", "error", "-nostdin", "-y", *inputs]
        for i in range(STEM_COUNT + 1):
            args += ["-map", f"{i}:a"]
        args += ["-c:a", "aac", "-b:a", AAC_BITRATE, "-f", "mp4"]
        for i, title in enumerate(("mixture", *names)):
            args += [f"-metadata:s:a:{i}", f"handler_name={title}", f"-disposition:a:{i}", "default" if i == 0 else "0"]
        run_tool([*args, str(muxed)])
        add_udta_box_file(muxed, path, b"stem", json.dumps(stem_metadata(names)).encode())
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
    return {name: read_audio(path, stream=i) for i, name in enumerate(("mixture", *info.names))}


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


def _moov_with_udta(moov: bytes, kind: bytes, payload: bytes) -> bytes:
    """A whole ``moov`` box (header included) with ``udta/<kind>`` added."""
    if struct.unpack(">I", moov[:4])[0] == 1:
        raise ValueError("a 64-bit moov box is not supported")
    new_box = _box(kind, payload)
    udta = _find(moov, 8, len(moov), b"udta")
    if udta is None:
        body = moov[8:] + _box(b"udta", new_box)
    else:
        _, u_start, u_header, u_end = udta
        body = moov[8:u_start] + _box(b"udta", moov[u_start + u_header:u_end] + new_box) + moov[u_end:]
    return _box(b"moov", body)


def _check_moov_last(moov: tuple | None, mdat: tuple | None) -> None:
    if moov is None or mdat is None:
        raise ValueError("not an MP4 with moov and mdat boxes")
    if moov[1] < mdat[1]:
        raise ValueError("the moov box precedes mdat: adding to it would move every sample offset")


def add_udta_box(data: bytes, kind: bytes, payload: bytes) -> bytes:
    """``data`` (an MP4 whose ``moov`` follows its ``mdat``) with ``moov/udta/<kind>`` added."""
    moov = _find(data, 0, len(data), b"moov")
    _check_moov_last(moov, _find(data, 0, len(data), b"mdat"))
    _, m_start, _, m_end = moov
    return data[:m_start] + _moov_with_udta(data[m_start:m_end], kind, payload) + data[m_end:]


def _top_level_boxes(f) -> list[tuple[bytes, int, int, int]]:
    """``(type, start, header, end)`` of each top-level box of an open file, reading headers only."""
    size_total = f.seek(0, 2)
    boxes, pos = [], 0
    while pos + 8 <= size_total:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:
            size = size_total - pos
        if size < header or pos + size > size_total:
            raise ValueError(f"malformed MP4: box {kind!r} at byte {pos} has size {size}")
        boxes.append((kind, pos, header, pos + size))
        pos += size
    return boxes


def add_udta_box_file(source: Path, target: Path, kind: bytes, payload: bytes) -> Path:
    """Copy the MP4 ``source`` to ``target`` with ``moov/udta/<kind>`` added; only ``moov`` is held in memory."""
    with open(source, "rb") as src:
        boxes = _top_level_boxes(src)
        moov = next((b for b in boxes if b[0] == b"moov"), None)
        _check_moov_last(moov, next((b for b in boxes if b[0] == b"mdat"), None))
        _, m_start, _, m_end = moov
        src.seek(m_start)
        new_moov = _moov_with_udta(src.read(m_end - m_start), kind, payload)
        with open(target, "wb") as dst:
            src.seek(0)
            _copy_bytes(src, dst, m_start)
            dst.write(new_moov)
            src.seek(m_end)
            shutil.copyfileobj(src, dst)
    return target


def _copy_bytes(src, dst, count: int, chunk: int = 1 << 20) -> None:
    while count > 0:
        data = src.read(min(chunk, count))
        if not data:
            raise ValueError("the MP4 ended early while copying")
        dst.write(data)
        count -= len(data)


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
