"""Writing audio files safely: block by block, into temporary files moved into place only when complete.

:class:`AudioWriter` appends ``[C, n]`` blocks to a wav or flac file and counts what clipping does
to integer output; :func:`check_outputs` refuses, before any work, outputs that would replace an
input, a folder, or an existing file; :class:`OutputSet` writes every output of one job into a
temporary folder beside them and moves them into place together at the end, so a failure or an
interruption leaves nothing half-written (an output that exists is complete). Used by
``stemstream separate`` (``plugin_host``) and the file-driven ``stemstream live`` (``rt``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

PCM_SUBTYPE = "PCM_24"  # 24-bit integer: wav and flac
FLOAT_SUBTYPE = "FLOAT"  # 32-bit float: wav only
WRITABLE_SUFFIXES = {".wav": "WAV", ".wave": "WAV", ".flac": "FLAC"}
TEMP_PREFIX = ".stemstream-partial-"  # temporary folders beside the outputs; removed on failure


class AudioWriter:
    """Appends ``[C, n]`` float32 blocks to a wav or flac file (chosen by the suffix).

    ``subtype`` is ``"PCM_24"`` (integer; samples beyond [-1, 1] are clipped and counted in
    :attr:`clipped_samples`) or ``"FLOAT"`` (wav only; nothing is clipped).
    """

    def __init__(self, path: str | Path, sample_rate_hz: int, channels: int, subtype: str = PCM_SUBTYPE) -> None:
        self.path = Path(path)
        fmt = WRITABLE_SUFFIXES.get(self.path.suffix.lower())
        if fmt is None:
            raise ValueError(f"cannot write {self.path.name}: the output must be .wav or .flac")
        if fmt == "FLAC" and subtype == FLOAT_SUBTYPE:
            raise ValueError("flac holds integer samples only: write float audio as wav")
        self.subtype = subtype
        self.clipped_samples = 0
        self.frames = 0
        import soundfile

        self._file = soundfile.SoundFile(str(self.path), "w", samplerate=sample_rate_hz, channels=channels,
                                         subtype=subtype, format=fmt)

    def write(self, block: np.ndarray) -> None:
        """Append ``block [C, n]``."""
        if self.subtype != FLOAT_SUBTYPE:
            self.clipped_samples += int(np.count_nonzero(np.abs(block) > 1.0))
        self._file.write(np.ascontiguousarray(block.T, dtype=np.float32))
        self.frames += block.shape[1]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_outputs(outputs: list[Path], inputs: set[Path], overwrite: bool) -> None:
    """Refuse, before any work, outputs that would replace an input, a folder, or (without
    ``overwrite``) an existing file; the message names the file and the way out."""
    for out in outputs:
        if out.resolve() in inputs:
            raise FileExistsError(f"output {out} is an input file, which is never overwritten; choose another output "
                                  "folder or name")
        if out.is_dir():
            raise IsADirectoryError(f"output {out} is a directory; remove it or choose another output folder or name")
        if out.exists() and not overwrite:
            raise FileExistsError(f"output {out} already exists; pass --overwrite to replace it, or choose "
                                  "another output folder or name")
        parent = next((p for p in out.parents if p.exists()), None)
        if parent is not None:
            _check_writable(out, parent)


def _check_writable(out: Path, folder: Path) -> None:
    """Create and delete a file in ``folder`` (permissions alone do not tell: root, /proc, read-only mounts)."""
    try:
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder")
        with tempfile.TemporaryFile(dir=folder, prefix=TEMP_PREFIX):
            pass
    except OSError as exc:
        raise PermissionError(f"cannot write {out}: cannot create files in {folder} ({exc.strerror or exc}); "
                              "choose another output folder") from None


class OutputSet:
    """The outputs of one input, written to temporary files and moved into place together.

    ``temp_path(final)`` gives where to write ``final`` meanwhile (in a hidden folder under the
    first output's nearest existing folder, on the same file system, so the move is a rename);
    ``commit()`` moves every one into place; leaving the ``with`` block without ``commit()``
    (an error, Ctrl-C) deletes them. Until ``commit()`` runs, no final path is touched.
    """

    def __init__(self, outputs: list[Path]) -> None:
        self.outputs = list(outputs)
        base = next(p for p in self.outputs[0].parents if p.exists())
        self._dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=base))
        self._committed = False

    def temp_path(self, final: Path) -> Path:
        return self._dir / f"{self.outputs.index(final)}{''.join(final.suffixes[-2:]) or '.tmp'}"

    def scratch(self, name: str) -> Path:
        """A scratch file in the temporary folder (deleted with it)."""
        return self._dir / name

    def commit(self) -> list[Path]:
        """Move every output into place (renames within one file system); returns them."""
        for final in self.outputs:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.temp_path(final), final)
        self._committed = True
        shutil.rmtree(self._dir, ignore_errors=True)
        return self.outputs

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            shutil.rmtree(self._dir, ignore_errors=True)
