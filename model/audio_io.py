"""Reading audio files block by block, with decode damage detected (the one reader of the project).

Lossless formats libsndfile reads (wav, flac, aiff, ogg, ...) are decoded by ``soundfile``;
everything else (mp3, m4a/aac, opus, the streams of a ``.stem.mp4``) by the ``ffmpeg`` command,
its output read from a pipe. Either way :class:`AudioReader` hands out ``[C, n]`` float32 blocks,
so a file of any length is read in bounded memory, and afterwards says whether the file looked
damaged: fewer samples decoded than its header or container declares, or errors from the decoder.
:func:`read_audio` reads a whole file (resampled and remixed on request) and refuses a damaged
one unless told otherwise. This module is on the inference side: ``rt`` and ``plugin_host``
import it, and ``model.training.data`` builds on it, never the other way round.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

LIBSNDFILE_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".w64", ".rf64", ".caf")
STEM_SUFFIXES = (".stem.mp4", ".stem.m4a")
READ_BLOCK_FRAMES = 65536
LIBSNDFILE_READ_FRAMES = 4096  # frames per libsndfile call
# a lossy stream's declared duration includes encoder priming and padding the decoder drops
DURATION_TOLERANCE_S = 0.1
DURATION_TOLERANCE_FRACTION = 0.002
MAX_DECODER_ERRORS_KEPT = 20


class Audio(NamedTuple):
    """A decoded signal: ``samples [C, T]`` float32 at ``sample_rate_hz``."""

    samples: np.ndarray
    sample_rate_hz: int


class AudioReadError(ValueError):
    """A file that cannot be read as audio; the message names the file, the problem and the fix."""


class DamagedAudioError(AudioReadError):
    """A file that decodes only in part (truncated, or with decoder errors)."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file says about one of its audio streams before decoding."""

    path: Path
    stream: int
    sample_rate_hz: int
    channels: int
    frames: int | None  # the header's or container's length in frames (None: it does not say)
    decoder: str        # "libsndfile" or "ffmpeg"
    header_note: str | None = None  # a length inconsistency the header itself shows (truncated wav)

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.sample_rate_hz


def is_stem_file(path: str | Path) -> bool:
    return str(path).lower().endswith(STEM_SUFFIXES)


def require_ffmpeg(tool: str = "ffmpeg") -> str:
    """Path of ``tool`` (ffmpeg or ffprobe); a clear error when it is not installed."""
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} is not installed; it decodes mp3/m4a/.stem.mp4 files and writes stem files "
                           "(apt-get install ffmpeg; scripts/install.sh does it)")
    return found


def run_tool(args: list[str]) -> bytes:
    """Run ffmpeg/ffprobe; on failure raise with the tool's own last lines of error output."""
    proc = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): " + " | ".join(tail))
    return proc.stdout


def probe_streams(path: str | Path) -> list[dict]:
    """ffprobe's description of every stream of ``path`` (codec, rate, channels, duration, tags)."""
    out = run_tool([require_ffmpeg("ffprobe"), "-v", "error", "-show_streams", "-show_format", "-of", "json",
                    str(path)])
    data = json.loads(out)
    fmt_duration = data.get("format", {}).get("duration")
    streams = data.get("streams", [])
    for s in streams:  # a stream without its own duration takes the container's
        s.setdefault("duration", fmt_duration)
    return streams


def check_audio_path(path: Path) -> None:
    """Refuse a path that cannot be an audio file, naming the fix: ``FileNotFoundError``,
    ``IsADirectoryError``, ``PermissionError``, or :class:`AudioReadError` (empty, not a file)."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an audio file; pass the files in it (e.g. {path}/*.wav)")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise AudioReadError(f"{path} is not a regular file (a device or pipe?); pass an audio file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except PermissionError:
        raise PermissionError(f"{path}: permission denied; make it readable (chmod +r) or copy it") from None
    if size == 0:
        raise AudioReadError(f"{path} is empty (0 bytes); it holds no audio")


def _uses_libsndfile(path: Path) -> bool:
    return path.suffix.lower() in LIBSNDFILE_SUFFIXES and not is_stem_file(path)


def _length_note(extra_info: str) -> str | None:
    """A header length that the file does not hold, from libsndfile's log (``data : N (should be M)``)."""
    notes = {line.split(":")[0].strip().lower(): line.strip() for line in extra_info.splitlines()
             if "(should be" in line}
    return next((notes[k] for k in ("data", "ssnd", "riff", "form") if k in notes), None)


def probe_audio(path: str | Path, stream: int = 0) -> AudioInfo:
    """Rate, channels and declared length of audio stream ``stream`` of ``path``, without decoding.

    Raises what :func:`check_audio_path` raises, or :class:`AudioReadError` for a file that is not audio.
    """
    path = Path(path)
    check_audio_path(path)
    if _uses_libsndfile(path) and stream == 0:
        import soundfile

        try:
            info = soundfile.info(str(path))
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioReadError(f"cannot decode {path} as audio ({exc}); is it really a {path.suffix} file? "
                                 "Supported: wav, flac, aiff, ogg (libsndfile) and whatever ffmpeg decodes "
                                 "(mp3, m4a, opus, .stem.mp4)") from exc
        return AudioInfo(path, 0, int(info.samplerate), int(info.channels), int(info.frames), "libsndfile",
                         _length_note(info.extra_info))
    try:
        streams = [s for s in probe_streams(path) if s.get("codec_type") == "audio"]
    except RuntimeError as exc:
        raise AudioReadError(f"cannot decode {path} as audio ({exc}); supported: wav, flac, aiff, ogg, mp3, "
                             "m4a, opus, .stem.mp4 (anything ffmpeg decodes)") from exc
    if not streams:
        raise AudioReadError(f"{path} holds no audio stream; pass an audio file")
    if stream >= len(streams):
        raise AudioReadError(f"{path} has {len(streams)} audio stream(s); stream {stream} does not exist")
    s = streams[stream]
    rate, channels = int(s["sample_rate"]), int(s["channels"])
    duration = s.get("duration")
    frames = round(float(duration) * rate) if duration not in (None, "N/A") else None
    return AudioInfo(path, stream, rate, channels, frames, "ffmpeg")


class AudioReader:
    """Decodes one audio stream of a file block by block: ``for block in reader.blocks(): ...``.

    Each block is ``[C, n]`` float32 at the file's own rate. After the blocks run out,
    :attr:`decoded_frames`, :attr:`decoder_errors` and :meth:`damage` tell how the decode went.
    A decoder exception mid-file ends the blocks early and is recorded as a decoder error.
    Use as a context manager (an ffmpeg child process is ended on exit).
    """

    def __init__(self, path: str | Path, stream: int = 0) -> None:
        self.info = probe_audio(path, stream)
        self.decoded_frames = 0
        self.decoder_errors: list[str] = []
        self.finished = False
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the decoder (an unfinished ffmpeg is killed)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc.stdout.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def blocks(self, block_frames: int = READ_BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """``[C, n]`` float32 blocks of at most ``block_frames`` frames, in order, until the end."""
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1, got {block_frames}")
        source = self._libsndfile_blocks if self.info.decoder == "libsndfile" else self._ffmpeg_blocks
        for block in source(block_frames):
            self.decoded_frames += block.shape[1]
            yield block
        self.finished = True

    def _libsndfile_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        import soundfile

        # small reads gathered into blocks: a decoder error mid-file loses at most one small read
        step = min(block_frames, LIBSNDFILE_READ_FRAMES)
        pieces: list[np.ndarray] = []
        held = 0
        try:
            with soundfile.SoundFile(str(self.info.path)) as f:
                while True:
                    data = f.read(step, dtype="float32", always_2d=True)  # [n, C]
                    if data.shape[0] == 0:
                        break
                    pieces.append(data)
                    held += data.shape[0]
                    if held >= block_frames:
                        yield np.ascontiguousarray(np.concatenate(pieces).T)
                        pieces, held = [], 0
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            self.decoder_errors.append(str(exc))
        if pieces:
            yield np.ascontiguousarray(np.concatenate(pieces).T)

    def _ffmpeg_blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        channels = self.info.channels
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [require_ffmpeg(), "-v", "error", "-nostdin", "-i", str(self.info.path), "-map", f"0:a:{self.info.stream}",
             "-f", "f32le", "-acodec", "pcm_f32le", "-"],
            stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        frame_bytes = 4 * channels
        # the AAC decoder keeps the encoder's end padding: stop at the container's length
        limit = self.info.frames if is_stem_file(self.info.path) or self.info.path.suffix.lower() in (
            ".m4a", ".mp4", ".aac") else None
        emitted = 0
        leftover = b""
        while True:
            chunk = self._proc.stdout.read(block_frames * frame_bytes - len(leftover))
            if not chunk:
                break
            data = leftover + chunk
            usable = len(data) - len(data) % frame_bytes
            leftover = data[usable:]
            block = np.frombuffer(data[:usable], np.float32).reshape(-1, channels).T
            if limit is not None:
                block = block[:, :max(0, limit - emitted)]
            if block.shape[1]:
                emitted += block.shape[1]
                yield np.ascontiguousarray(block)
        code = self._proc.wait()
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        self.decoder_errors.extend(lines[:MAX_DECODER_ERRORS_KEPT])
        if len(lines) > MAX_DECODER_ERRORS_KEPT:
            self.decoder_errors.append(f"... and {len(lines) - MAX_DECODER_ERRORS_KEPT} more")
        if code != 0 and not lines:
            self.decoder_errors.append(f"ffmpeg exited with status {code}")
        self.close()

    def damage(self) -> str | None:
        """What looks damaged about the file, or None; meaningful once :meth:`blocks` has run out."""
        info, problems = self.info, []
        rate = info.sample_rate_hz
        decoded_s = self.decoded_frames / rate
        if info.header_note is not None:
            problems.append(f"its header declares more data than the file holds ({info.header_note}; "
                            f"{decoded_s:.2f} s decoded): it looks truncated")
        elif info.frames is not None:
            tolerance = 0 if info.decoder == "libsndfile" else round(
                rate * (DURATION_TOLERANCE_S + DURATION_TOLERANCE_FRACTION * info.frames / rate))
            if self.decoded_frames < info.frames - tolerance:
                problems.append(f"decoded {decoded_s:.2f} s of the {info.frames / rate:.2f} s its "
                                f"{'header' if info.decoder == 'libsndfile' else 'container'} declares")
        if self.decoder_errors:
            problems.append(f"the decoder reported {len(self.decoder_errors)} error(s), first: "
                            f"{self.decoder_errors[0]!r}")
        if not problems:
            return None
        return f"{info.path} looks damaged: " + "; ".join(problems)


def damage_error(description: str) -> DamagedAudioError:
    """The error for a damaged file, saying what to do about it."""
    return DamagedAudioError(f"{description}. Re-encode or re-download the file, or accept what decodes with "
                             "--allow-damaged (allow_damaged=True in Python)")


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """``[C, T] -> [channels, T]``: average to mono, repeat mono, or keep; other changes are errors."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    raise ValueError(f"cannot turn {have} channels into {channels}: only mono <-> any is defined")


def read_audio(path: str | Path, sample_rate_hz: int | None = None, channels: int | None = None, stream: int = 0,
               allow_damaged: bool = False) -> Audio:
    """A whole audio stream of ``path`` -> ``Audio(samples [channels, T] float32, sample_rate_hz)``.

    ``None`` keeps the file's own rate or channel count. Other
    rates are reached with soxr's high-quality resampler. A damaged file (see
    :meth:`AudioReader.damage`) raises :class:`DamagedAudioError` unless ``allow_damaged``, which
    warns and returns what decoded.
    """
    with AudioReader(path, stream) as reader:
        blocks = list(reader.blocks())
        damage = reader.damage()
        info = reader.info
    if damage is not None:
        if not allow_damaged:
            raise damage_error(damage)
        warnings.warn(f"{damage}; using the {reader.decoded_frames / info.sample_rate_hz:.2f} s that decoded",
                      RuntimeWarning, stacklevel=2)
    audio = np.concatenate(blocks, axis=1) if blocks else np.zeros((info.channels, 0), np.float32)
    rate = info.sample_rate_hz if sample_rate_hz is None else sample_rate_hz
    if rate != info.sample_rate_hz and audio.shape[1]:
        import soxr

        audio = np.ascontiguousarray(soxr.resample(audio.T, info.sample_rate_hz, rate, quality="HQ").T,
                                     dtype=np.float32)
    return Audio(to_channels(audio, channels) if channels is not None else audio, rate)
