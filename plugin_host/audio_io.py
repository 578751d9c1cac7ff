"""Reading and writing audio files: wav/flac/mp3/ogg through pedalboard.io, stem files through ffmpeg."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pedalboard.io import AudioFile

STEM_SUFFIXES = (".stem.mp4", ".stem.m4a")
OUTPUT_FORMATS = ("wav", "flac", "stem.mp4")
PCM_BIT_DEPTH = 24  # of written wav and flac files


class Audio(NamedTuple):
    """A decoded signal: ``samples [C, T]`` float32 at ``sample_rate_hz``."""

    samples: np.ndarray
    sample_rate_hz: int


def is_stem_file(path: str | Path) -> bool:
    return str(path).lower().endswith(STEM_SUFFIXES)


def require_ffmpeg(tool: str = "ffmpeg") -> str:
    """Path of ``tool`` (ffmpeg or ffprobe); a clear error when it is not installed."""
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} is not installed; it is needed for .stem.mp4 files (apt-get install ffmpeg)")
    return found


def run_tool(args: list[str]) -> bytes:
    """Run ffmpeg/ffprobe; on failure raise with the tool's own last lines of error output."""
    proc = subprocess.run(args, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): " + " | ".join(tail))
    return proc.stdout


def probe_streams(path: str | Path) -> list[dict]:
    """ffprobe's description of every stream of ``path`` (codec, rate, channels, tags)."""
    out = run_tool([require_ffmpeg("ffprobe"), "-v", "error", "-show_streams", "-of", "json", str(path)])
    return json.loads(out)["streams"]


def decode_stream(path: str | Path, index: int = 0) -> Audio:
    """Audio stream ``index`` of a (multi-stream) file, decoded by ffmpeg to ``[C, T]`` float32."""
    audio_streams = [s for s in probe_streams(path) if s.get("codec_type") == "audio"]
    if index >= len(audio_streams):
        raise ValueError(f"{path} has {len(audio_streams)} audio stream(s); stream {index} does not exist")
    info = audio_streams[index]
    channels, rate = int(info["channels"]), int(info["sample_rate"])
    raw = run_tool([require_ffmpeg(), "-v", "error", "-i", str(path), "-map", f"0:a:{index}",
                    "-f", "f32le", "-acodec", "pcm_f32le", "-"])
    samples = np.frombuffer(raw, np.float32).reshape(-1, channels).T
    if "duration" in info:  # the AAC decoder keeps the encoder's end padding; the container knows better
        samples = samples[:, :round(float(info["duration"]) * rate)]
    return Audio(np.ascontiguousarray(samples), rate)


def read_audio(path: str | Path) -> Audio:
    """wav/flac/mp3/ogg/aiff (pedalboard.io), or the mixture (stream 0) of a ``.stem.mp4``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if is_stem_file(path):
        return decode_stream(path, 0)
    try:
        with AudioFile(str(path)) as f:
            samples = f.read(f.frames)
            rate = f.samplerate
    except Exception as exc:  # pedalboard raises ValueError/RuntimeError for unreadable files
        raise ValueError(f"{path}: cannot read it as audio ({exc}); supported: wav, flac, mp3, ogg, aiff, "
                         f"and .stem.mp4") from exc
    if int(rate) != rate:
        raise ValueError(f"{path}: fractional sample rate {rate} Hz is not supported")
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), int(rate))


def write_audio(path: str | Path, samples: np.ndarray, sample_rate_hz: int) -> Path:
    """``samples [C, T]`` to a wav or flac file (24-bit), chosen by the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AudioFile(str(path), "w", sample_rate_hz, samples.shape[0], bit_depth=PCM_BIT_DEPTH) as f:
        f.write(np.ascontiguousarray(samples, dtype=np.float32))
    return path
