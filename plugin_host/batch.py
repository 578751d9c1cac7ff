"""Separating files block by block: memory independent of length, outputs that appear only when complete.

:func:`separate_file` is the single-file unit (a catalogue runner calls it per file):

1. the planned outputs are checked first: an input is never overwritten, an existing output only
   with ``overwrite``; a folder in the way is an error;
2. a first pass decodes the input to find its peak, its NaN/inf samples and decode damage
   (fewer samples than the container declares, decoder errors): a damaged file is an error
   unless ``allow_damaged``; input above full scale is written as 32-bit float wav (or scaled
   to 0 dBFS with ``normalize``), never clipped silently;
3. a second pass streams blocks through the separator, the stem chains and the mix chain into
   temporary files beside the outputs, which are renamed into place at the very end. A failure
   or an interruption at any moment removes the temporary files, so an output that exists is
   complete (a resumable runner can rely on that).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.audio_io import READ_BLOCK_FRAMES, AudioReader, AudioReadError, damage_error

from .audio_io import FLOAT_SUBTYPE, OUTPUT_FORMATS, PCM_SUBTYPE, STEM_SUFFIXES, AudioWriter, OutputSet, check_outputs
from .chain import Chain
from .chain_spec import ChainSpec
from .fifo import SampleFifo
from .layout import finite
from .ni_stems import check_stem_count, mux_stem_file
from .separator import StemSeparator

MIX_NAME = "mix"  # file name of the mix chain's output beside the stems
CHAIN_BLOCK_SAMPLES = 8192  # fixed block size fed to stem/mix chains (native plugins prefer a constant one)
STEM_SCRATCH_SUFFIX = ".flac"  # stem.mp4: the streams are written losslessly before ffmpeg encodes them

# progress(phase, done_s, total_s): phase "checking" (first pass) or "separating"
Progress = Callable[[str, float, float], None]


@dataclass(frozen=True)
class SeparateOptions:
    """How :func:`separate_file` treats outputs and unusual input."""

    fmt: str = "wav"              # one of OUTPUT_FORMATS
    overwrite: bool = False       # replace existing outputs (inputs are never replaced)
    allow_damaged: bool = False   # separate what decodes of a damaged file, with a warning
    normalize: bool = False       # scale input above full scale down to 0 dBFS (else: float wav output)
    block_samples: int = READ_BLOCK_FRAMES  # decoded samples per block (memory, not results)

    def __post_init__(self) -> None:
        if self.fmt not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {self.fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
        if self.block_samples < 1:
            raise ValueError(f"block_samples must be >= 1, got {self.block_samples}")


@dataclass
class FileReport:
    """What separating one file did: its outputs and everything worth a warning."""

    input: Path
    outputs: list[Path]
    seconds: float                 # audio separated
    peak: float                    # largest absolute finite input sample
    gain_db: float = 0.0           # applied by normalize (0: none)
    float_output: bool = False     # stems written as 32-bit float (input above full scale)
    nonfinite_samples: int = 0     # NaN/inf input samples zeroed
    clipped_samples: dict[str, int] = field(default_factory=dict)  # per output, beyond full scale in PCM
    warnings: list[str] = field(default_factory=list)


@dataclass
class FileResult:
    """What became of one input in :func:`separate_files`: ``status`` is ``done``, ``failed``,
    ``interrupted`` (stopped by Ctrl-C/SIGTERM; nothing of it written) or ``not started``."""

    input: Path
    status: str = "not started"
    report: FileReport | None = None
    error: str | None = None

    @property
    def outputs(self) -> list[Path]:
        return self.report.outputs if self.report is not None else []


@dataclass
class InputScan:
    """The first pass over an input: its length, peak, NaN/inf count and damage (None if none)."""

    sample_rate_hz: int
    channels: int
    frames: int
    peak: float
    nonfinite_samples: int
    damage: str | None

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate_hz


def track_name(path: Path) -> str:
    """``song`` for ``song.flac`` and for ``song.stem.mp4``."""
    name = path.name
    for suffix in STEM_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def planned_outputs(path: Path, out_dir: Path, stems: Sequence[str], fmt: str, with_mix: bool) -> list[Path]:
    """The files separating ``path`` writes: ``OUT/NAME/STEM.EXT`` each, or ``OUT/NAME.stem.mp4``."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    name = track_name(path)
    if fmt == "stem.mp4":
        return [out_dir / f"{name}.stem.mp4"]
    names = [*stems, MIX_NAME] if with_mix else list(stems)
    return [out_dir / name / f"{s}.{fmt}" for s in names]


def outputs_complete(outputs: Sequence[Path]) -> bool:
    """Whether every planned output exists: outputs appear only when complete (renamed at the end)."""
    return all(p.is_file() for p in outputs)


def scan_input(path: Path, block_samples: int = READ_BLOCK_FRAMES, progress: Progress | None = None) -> InputScan:
    """Decode ``path`` once without keeping it: length, peak, NaN/inf samples, damage."""
    peak, nonfinite = 0.0, 0
    with AudioReader(path) as reader:
        info = reader.info
        total_s = (info.frames or 0) / info.sample_rate_hz
        for block in reader.blocks(block_samples):
            finite_block, bad = finite(block)
            nonfinite += bad
            if finite_block.size:
                peak = max(peak, float(np.abs(finite_block).max()))
            if progress is not None:
                progress("checking", reader.decoded_frames / info.sample_rate_hz, total_s)
        return InputScan(info.sample_rate_hz, info.channels, reader.decoded_frames, peak, nonfinite,
                         reader.damage())


class _AlignedChain:
    """A :class:`Chain` streamed in fixed blocks with its latency compensated: the output is
    aligned with the input and exactly as long (what ``chain.process(x, reset=True)`` gives for
    the whole signal, without holding it)."""

    def __init__(self, chain: Chain, sample_rate_hz: int, channels: int) -> None:
        self.chain, self.rate, self.channels = chain, sample_rate_hz, channels
        chain.reset()
        self._fifo = SampleFifo((channels,))
        self._skip: int | None = None
        self._in = self._out = 0

    def push(self, x: np.ndarray) -> Iterator[np.ndarray]:
        self._fifo.push(x)
        self._in += x.shape[1]
        while self._fifo.available >= CHAIN_BLOCK_SAMPLES:
            yield from self._run(self._fifo.pop(CHAIN_BLOCK_SAMPLES))

    def finish(self) -> Iterator[np.ndarray]:
        rest = self._fifo.pop(self._fifo.available)
        block = np.zeros((self.channels, CHAIN_BLOCK_SAMPLES), np.float32)
        block[:, :rest.shape[1]] = rest
        while self._out < self._in:
            yield from self._run(block)
            block = np.zeros_like(block)

    def _run(self, x: np.ndarray) -> Iterator[np.ndarray]:
        y = self.chain.process_channels_first(x, self.rate, CHAIN_BLOCK_SAMPLES, reset=False)
        if self._skip is None:
            self._skip = self.chain.latency_samples
        cut = min(self._skip, y.shape[1])
        self._skip -= cut
        y = y[:, cut:cut + max(0, self._in - self._out)]
        if y.shape[1]:
            self._out += y.shape[1]
            yield y


class _Mixer:
    """Sums streams that arrive in different amounts (each stem's chain has its own latency)."""

    def __init__(self, names: Sequence[str], channels: int) -> None:
        self._fifos = {n: SampleFifo((channels,)) for n in names}

    def push(self, name: str, x: np.ndarray) -> np.ndarray:
        self._fifos[name].push(x)
        n = min(f.available for f in self._fifos.values())
        return sum(f.pop(n) for f in self._fifos.values())


def _over_range_plan(path: Path, scan: InputScan, options: SeparateOptions) -> tuple[float, bool, list[str]]:
    """Gain, float output and warnings for the input's peak (above full scale: never a silent clip)."""
    if scan.peak <= 1.0:
        return 1.0, False, []
    peak_db = 20 * math.log10(scan.peak)
    if options.normalize:
        return 1.0 / scan.peak, False, [f"input peaks at {scan.peak:.4g} ({peak_db:+.1f} dBFS), above full scale: "
                                        f"scaled by {-peak_db:.1f} dB to 0 dBFS (--normalize)"]
    if options.fmt != "wav":
        raise ValueError(f"{path} peaks at {scan.peak:.4g} ({peak_db:+.1f} dBFS), above full scale, and "
                         f"{options.fmt} holds integer samples, which would clip it: pass --normalize (scales it "
                         "to 0 dBFS) or use --format wav (32-bit float stems)")
    return 1.0, True, [f"input peaks at {scan.peak:.4g} ({peak_db:+.1f} dBFS), above full scale: stems written as "
                       "32-bit float wav so nothing is clipped (--normalize scales to 0 dBFS for 24-bit output)"]


def separate_file(separator: StemSeparator, path: Path, outputs: list[Path], fmt: str = "wav",
                  spec: ChainSpec | None = None, options: SeparateOptions | None = None,
                  progress: Progress | None = None, protected: frozenset[Path] = frozenset()) -> FileReport:
    """Separate one file into ``outputs`` (from :func:`planned_outputs`), block by block.

    ``protected`` are other paths never to overwrite (the other inputs of a batch). Raises on
    failure (:class:`model.audio_io.AudioReadError` and its ``DamagedAudioError`` for unreadable
    or damaged input, ``FileExistsError``/``IsADirectoryError``/``PermissionError`` for outputs,
    ``ValueError`` for input a format cannot hold); whatever happens, no output is left
    half-written. Returns what was done, with warnings.
    """
    path = Path(path)
    options = options or SeparateOptions(fmt=fmt)
    if options.fmt != fmt:
        options = SeparateOptions(fmt, options.overwrite, options.allow_damaged, options.normalize,
                                  options.block_samples)
    if fmt == "stem.mp4":
        check_stem_count(separator.stems)
    check_outputs(outputs, set(protected) | {path.resolve()}, options.overwrite)
    scan = scan_input(path, options.block_samples, progress)
    notes = []
    if scan.damage is not None:
        if not options.allow_damaged:
            raise damage_error(scan.damage)
        notes.append(f"{scan.damage}; separated the {scan.seconds:.2f} s that decoded (--allow-damaged)")
    if scan.frames == 0:
        raise AudioReadError(f"{path} holds no audio samples (0 decoded); nothing to separate")
    gain, float_output, range_notes = _over_range_plan(path, scan, options)
    notes += range_notes
    if scan.nonfinite_samples:
        notes.append(f"{scan.nonfinite_samples} NaN or infinite input sample(s) were replaced by zeros")
    report = FileReport(path, [], scan.seconds, scan.peak, 20 * math.log10(gain),
                        float_output, scan.nonfinite_samples, warnings=notes)
    with OutputSet(outputs) as out_set:
        writers = _stream(separator, path, outputs, out_set, fmt, spec, options, scan, gain, float_output, progress)
        if fmt == "stem.mp4":
            mixture, *stems = (w.path for w in writers.values())
            mux_stem_file(out_set.temp_path(outputs[0]), mixture, dict(zip(separator.stems, stems)))
        report.clipped_samples = {name: w.clipped_samples for name, w in writers.items() if w.clipped_samples}
        for name, count in report.clipped_samples.items():
            report.warnings.append(f"{name}: {count} sample(s) beyond full scale were clipped in the 24-bit "
                                   "output; lower that stem's level in the --chain file")
        report.outputs = out_set.commit()
    return report


def _stream(separator: StemSeparator, path: Path, outputs: list[Path], out_set: OutputSet, fmt: str,
            spec: ChainSpec | None, options: SeparateOptions, scan: InputScan, gain: float, float_output: bool,
            progress: Progress | None) -> dict[str, AudioWriter]:
    """The second pass: decode, separate, run chains, write; returns the closed writers by name."""
    rate, channels = scan.sample_rate_hz, scan.channels
    subtype = FLOAT_SUBTYPE if float_output else PCM_SUBTYPE
    names = list(separator.stems)
    with_mix = spec is not None and spec.mix is not None
    writers: dict[str, AudioWriter] = {}
    try:
        if fmt == "stem.mp4":
            targets = {n: out_set.scratch(f"{i}{STEM_SCRATCH_SUFFIX}") for i, n in enumerate(["mixture", *names])}
        else:
            targets = {n: out_set.temp_path(o) for n, o in zip([*names, MIX_NAME] if with_mix else names, outputs)}
        for name, target in targets.items():
            writers[name] = AudioWriter(target, rate, channels, subtype)
        stem_chains = {n: _AlignedChain(c, rate, channels) for n, c in (spec.stems.items() if spec else ())
                       if n in names}
        mix_chain = _AlignedChain(spec.mix, rate, channels) if with_mix else None
        mixer = _Mixer(names, channels) if with_mix else None
        mix_name = "mixture" if fmt == "stem.mp4" else MIX_NAME

        def emit(name: str, block: np.ndarray) -> None:
            writers[name].write(block)
            if mixer is not None:
                mixed = mixer.push(name, block)
                if mixed.shape[1]:
                    for y in mix_chain.push(mixed):
                        writers[mix_name].write(y)

        with AudioReader(path) as reader:
            def blocks() -> Iterator[np.ndarray]:
                for block in reader.blocks(options.block_samples):
                    block, _ = finite(block)
                    if gain != 1.0:
                        block = block * np.float32(gain)
                    if fmt == "stem.mp4" and not with_mix:
                        writers["mixture"].write(block)
                    yield block

            selected = [separator.model_stems.index(n) for n in names]
            done = 0
            for out in separator.separate_blocks(blocks(), rate):  # [S, C, m]
                for i, name in zip(selected, names):
                    if name in stem_chains:
                        for y in stem_chains[name].push(out[i]):
                            emit(name, y)
                    else:
                        emit(name, out[i])
                done += out.shape[-1]
                if progress is not None:
                    progress("separating", done / rate, scan.seconds)
        for name, chain in stem_chains.items():
            for y in chain.finish():
                emit(name, y)
        if mix_chain is not None:
            for y in mix_chain.finish():
                writers[mix_name].write(y)
    finally:
        for w in writers.values():
            w.close()
    return writers


def separate_files(separator: StemSeparator, inputs: Sequence[str | Path], out_dir: str | Path, fmt: str = "wav",
                   spec: ChainSpec | None = None, options: SeparateOptions | None = None,
                   progress: Callable[[Path, int, int], Progress] | None = None) -> list[FileResult]:
    """Separate every input; a failure on one is recorded in its result and the rest go on.

    An input whose outputs would overwrite an input file, or the outputs of an earlier input
    in this run (two inputs with the same name), fails without writing anything. Ctrl-C
    (``KeyboardInterrupt``) stops the run: the input being separated is marked ``interrupted``
    (nothing of it is written), the rest ``not started``, and the results are returned.
    ``progress(path, index, count)`` returns the per-file progress callback (or None).
    """
    options = options or SeparateOptions(fmt=fmt)
    out_dir = Path(out_dir)
    paths = [Path(p) for p in inputs]
    input_files = frozenset(p.resolve() for p in paths)
    claimed: dict[Path, Path] = {}
    with_mix = spec is not None and spec.mix is not None
    results = [FileResult(p) for p in paths]
    for index, (path, result) in enumerate(zip(paths, results)):
        try:
            outputs = planned_outputs(path, out_dir, separator.stems, fmt, with_mix)
            for out in outputs:
                if out.resolve() in claimed:
                    raise FileExistsError(f"output {out} would overwrite the output of {claimed[out.resolve()]} "
                                          "(same name); separate it in another run or into another --out")
            for out in outputs:
                claimed[out.resolve()] = path
            file_progress = progress(path, index, len(paths)) if progress is not None else None
            result.report = separate_file(separator, path, outputs, fmt, spec, options, file_progress, input_files)
            result.status = "done"
        except KeyboardInterrupt:
            result.status, result.error = "interrupted", "interrupted; nothing of it was written"
            break
        except Exception as exc:  # one bad file must not stop the batch; the error is reported
            result.status, result.error = "failed", str(exc) if isinstance(exc, (AudioReadError, OSError)) else (
                f"{type(exc).__name__}: {exc}")
    return results
