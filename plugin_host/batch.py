"""Separating files: one input at a time, outputs per stem (wav/flac) or one NI stem file each."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio_io import OUTPUT_FORMATS, STEM_SUFFIXES, read_audio, write_audio
from .chain_spec import ChainSpec
from .ni_stems import write_stem_file
from .separator import StemSeparator

MIX_NAME = "mix"  # file name of the mix chain's output beside the stems


@dataclass
class FileResult:
    """What became of one input: the files written, or the error that stopped it."""

    input: Path
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None


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


def separate_file(separator: StemSeparator, path: Path, outputs: list[Path], fmt: str,
                  spec: ChainSpec | None) -> list[Path]:
    """Separate one file into ``outputs`` (from :func:`planned_outputs`); returns them."""
    audio, rate = read_audio(path)
    if audio.shape[1] == 0:
        raise ValueError(f"{path} holds no samples")
    every = separator.separate(audio, rate)
    stems = {name: every[name] for name in separator.stems}
    if spec is not None:
        for name, chain in spec.stems.items():
            if name in stems:
                stems[name] = chain.process(stems[name], rate)
    mix = None
    if spec is not None and spec.mix is not None:
        mix = spec.mix.process(np.sum(list(stems.values()), axis=0), rate)
    if fmt == "stem.mp4":
        return [write_stem_file(outputs[0], audio if mix is None else mix, stems, rate)]
    signals = [*stems.values(), mix] if mix is not None else list(stems.values())
    return [write_audio(out, signal, rate) for out, signal in zip(outputs, signals)]


def separate_files(separator: StemSeparator, inputs: Sequence[str | Path], out_dir: str | Path, fmt: str = "wav",
                   spec: ChainSpec | None = None, progress: bool = True) -> list[FileResult]:
    """Separate every input; a failure on one is recorded in its result and the rest go on.

    An input whose outputs would overwrite an input file, or the outputs of an earlier input
    in this run (two inputs with the same name), fails without writing anything.
    """
    out_dir = Path(out_dir)
    paths = [Path(p) for p in inputs]
    input_files = {p.resolve() for p in paths}
    claimed: dict[Path, Path] = {}
    with_mix = spec is not None and spec.mix is not None
    results = []
    for path in tqdm(paths, desc="separating", unit="file", disable=not progress):
        result = FileResult(path)
        results.append(result)
        try:
            outputs = planned_outputs(path, out_dir, separator.stems, fmt, with_mix)
            for out in outputs:
                target = out.resolve()
                if target in input_files:
                    raise ValueError(f"output {out} would overwrite an input file; choose another --out")
                if target in claimed:
                    raise ValueError(f"output {out} would overwrite the output of {claimed[target]} (same name); "
                                     "separate it in another run or into another --out")
            for out in outputs:
                claimed[out.resolve()] = path
            result.outputs = separate_file(separator, path, outputs, fmt, spec)
        except Exception as exc:  # one bad file must not stop the batch; the error is reported
            result.error = f"{type(exc).__name__}: {exc}"
    return results
