"""Separating catalogues: many files, on worker processes or a Ray cluster, resumably.

Inputs are files, folders (searched recursively; outputs mirror the folder's layout under
``--out``), glob patterns (``music/**/*.flac``, ``**`` recursive) and ``@LIST`` files (one input
per line, each expanded the same way; blank lines and ``#`` comments skipped; relative paths
are relative to the current folder, as on the command line).

Every file is an independent job that runs :func:`plugin_host.batch.separate_file` (block-wise,
outputs written to temporary files and renamed into place at the end). Completeness is decided
by a small JSON marker per file, ``.NAME.stemstream.json`` beside its outputs, written
atomically: ``started`` before the file is separated, ``done`` (with the input's size and
modification time, the settings, and every output's size) after its outputs are in place. On
a rerun a file is

- ``complete`` (skipped): marker ``done``, same input and settings, every output there with its
  recorded size;
- ``partial`` (redone, its own outputs replaced): marker ``started`` (interrupted, even in the
  middle of the final renames), or ``done`` with an output missing or of another size;
- ``stale``: marker ``done`` but the input changed or the settings differ: redone with
  ``--overwrite``, else an error that says so;
- ``new``: no marker; existing outputs (not made by a catalogue run) are replaced only with
  ``--overwrite``, as in a plain ``stemstream separate``.

Runners: ``jobs=1`` in this process; ``jobs=N`` a pool of N spawned worker processes (one torch
thread each by default), each loading the model once; ``ray=ADDRESS`` one Ray task per file
(``local``: a new local Ray instance with ``jobs`` CPUs, default all; ``auto``: a running
cluster if one is found, else a local instance; otherwise the cluster's address). On a
cluster, the inputs and ``--out`` must be at the same paths on every node (a shared folder)
and stemstream installed there (``pip install stemstream[ray]``).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from model.audio_io import LIBSNDFILE_SUFFIXES, STEM_SUFFIXES
from model.audio_out import TEMP_PREFIX  # OutputSet's temporary folders, which killed workers leave

from .audio_io import check_outputs
from .batch import SeparateOptions, planned_outputs, separate_file, track_name

# what a folder search picks up (ffmpeg decodes the lossy ones)
AUDIO_SUFFIXES = LIBSNDFILE_SUFFIXES + (".mp3", ".m4a", ".aac", ".opus", ".wma")
MARKER_SUFFIX = ".stemstream.json"


class CatalogueError(ValueError):
    """Inputs that cannot be expanded (no match, unreadable list); the message names the fix."""


@dataclass(frozen=True)
class CatalogueSettings:
    """What every job of a run shares (sent to the workers; part of each file's marker)."""

    model: str
    stems: tuple[str, ...] | None = None
    fmt: str = "wav"
    chain: str | None = None      # chain file path (loaded in each worker)
    n_q: int | None = None
    device: str = "cpu"
    normalize: bool = False
    allow_damaged: bool = False
    threads: int | None = None    # torch threads per worker (None: torch's default)

    def fingerprint(self) -> dict:
        """The settings that change the outputs, as stored in a marker."""
        chain = Path(self.chain) if self.chain else None
        model = Path(self.model)
        return {"model": str(model.resolve()) if model.exists() else self.model,
                "stems": list(self.stems) if self.stems else None, "format": self.fmt, "n_q": self.n_q,
                "chain_sha256": hashlib.sha256(chain.read_bytes()).hexdigest() if chain else None,
                "normalize": self.normalize, "allow_damaged": self.allow_damaged}


@dataclass(frozen=True)
class Job:
    """One input and where its outputs and marker go; ``overwrite``: replace existing outputs."""

    input: Path
    outputs: tuple[Path, ...]
    marker: Path
    state: str  # new, partial or stale (complete files get no job)
    overwrite: bool


@dataclass
class JobResult:
    """What became of one input: ``status`` is ``done``, ``skipped`` (complete), ``failed``."""

    input: Path
    status: str
    outputs: list[Path] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- inputs

def _audio_files(folder: Path, skip: Path | None) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or Path(root, d).resolve() != skip))
        found += [Path(root, f) for f in sorted(files)
                  if not f.startswith(".") and f.lower().endswith(AUDIO_SUFFIXES + STEM_SUFFIXES)]
    return found


def expand_inputs(specs: Sequence[str], out_dir: str | Path) -> list[tuple[Path, Path]]:
    """``(input file, its output folder)`` for every file that ``specs`` name, in order, without
    repeats. A folder's files get ``out_dir / their folder relative to it``; files named directly,
    by a glob or in a list get ``out_dir``. ``out_dir`` itself is never searched."""
    out_dir = Path(out_dir)
    skip = out_dir.resolve() if out_dir.exists() else None
    pairs: list[tuple[Path, Path]] = []

    def add(spec: str, origin: str) -> None:
        if Path(spec).is_file():  # first: "Song [Live].flac" is a file, not a pattern
            pairs.append((Path(spec), out_dir))
            return
        if spec.startswith("@"):
            listing = Path(spec[1:])
            try:
                lines = listing.read_text().splitlines()
            except OSError as exc:
                raise CatalogueError(f"{origin}{spec}: cannot read the list file ({exc.strerror or exc}); "
                                     "@FILE names a text file with one input per line") from None
            for line in lines:
                if line.strip() and not line.lstrip().startswith("#"):
                    add(line.strip(), f"{listing}: ")
            return
        path = Path(spec)
        if path.is_dir():
            files = _audio_files(path, skip)
            if not files:
                raise CatalogueError(f"{origin}{spec}: no audio files in this folder "
                                     f"({', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES[:6])}, ...)")
            pairs.extend((f, out_dir / f.parent.relative_to(path)) for f in files)
        elif glob.has_magic(spec):
            files = [Path(p) for p in sorted(glob.glob(spec, recursive=True)) if Path(p).is_file()
                     and (skip is None or skip not in Path(p).resolve().parents)]
            if not files:
                raise CatalogueError(f"{origin}{spec}: the pattern matches no file; check it (quote it so the "
                                     "shell leaves it to stemstream; ** matches folders recursively)")
            pairs.extend((f, out_dir) for f in files)
        else:
            pairs.append((path, out_dir))  # a file (checked with the others, so errors name it)

    for spec in specs:
        add(spec, "")
    seen: set[Path] = set()
    unique = []
    for f, o in pairs:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((f, o))
    return unique


# ---------------------------------------------------------------- markers

def marker_path(outputs: Sequence[Path], input_path: Path) -> Path:
    """``.NAME.stemstream.json`` in the folder of the first output."""
    return outputs[0].parent / f".{track_name(input_path)}{MARKER_SUFFIX}"


def _input_fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"input": str(path.resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}


def _write_marker(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def _read_marker(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing, or torn by a crash: not complete


def file_state(input_path: Path, outputs: Sequence[Path], settings: CatalogueSettings) -> str:
    """``complete``, ``partial``, ``stale`` or ``new`` (see the module docstring)."""
    marker = _read_marker(marker_path(outputs, input_path))
    if marker is None:
        return "new"
    if marker.get("state") != "done":
        return "partial"
    recorded = {Path(o["path"]).name: o["size"] for o in marker.get("outputs", [])}
    for out in outputs:
        if not out.is_file() or recorded.get(out.name) != out.stat().st_size:
            return "partial"
    same_input = {k: marker.get(k) for k in ("input", "input_size", "input_mtime_ns")} == _input_fingerprint(input_path)
    return "complete" if same_input and marker.get("settings") == settings.fingerprint() else "stale"


def _why_stale(input_path: Path, outputs: Sequence[Path], settings: CatalogueSettings) -> str:
    """What differs for a ``stale`` file: the input, or which settings."""
    marker = _read_marker(marker_path(outputs, input_path)) or {}
    if {k: marker.get(k) for k in ("input", "input_size", "input_mtime_ns")} != _input_fingerprint(input_path):
        return "the input changed (size or modification time) since its outputs were made"
    old, new = marker.get("settings") or {}, settings.fingerprint()
    keys = sorted(k for k in new.keys() | old.keys() if old.get(k) != new.get(k))
    return "its outputs were made with other settings (" + ", ".join(f"{k}: {old.get(k)} -> {new.get(k)}"
                                                                     for k in keys) + ")"


def plan(pairs: Sequence[tuple[Path, Path]], settings: CatalogueSettings, model_stems: Sequence[str],
         with_mix: bool, overwrite: bool) -> tuple[list[Job], list[JobResult]]:
    """Jobs for the files to separate, and results for those skipped (complete) or refused."""
    jobs, done = [], []
    inputs = {p.resolve() for p, _ in pairs}
    claimed: dict[Path, Path] = {}
    for path, out_dir in pairs:
        outputs = tuple(planned_outputs(path, out_dir, model_stems, settings.fmt, with_mix))
        clash = next((claimed[o.resolve()] for o in outputs if o.resolve() in claimed), None)
        if clash is not None:
            done.append(JobResult(path, "failed", error=f"its outputs would replace those of {clash} (same name); "
                                                         "separate it into another --out, or put it in a subfolder"))
            continue
        if any(o.resolve() in inputs for o in outputs):
            done.append(JobResult(path, "failed", error="an output would replace an input file; choose another --out"))
            continue
        claimed.update({o.resolve(): path for o in outputs})
        try:
            state = file_state(path, outputs, settings)
        except OSError as exc:
            done.append(JobResult(path, "failed", error=str(exc)))
            continue
        if state == "complete":
            done.append(JobResult(path, "skipped", list(outputs)))
        elif state == "stale" and not overwrite:
            done.append(JobResult(path, "failed", error=f"{_why_stale(path, outputs, settings)}; pass --overwrite "
                                                        "to redo them, or choose another --out"))
        else:
            jobs.append(Job(path, outputs, marker_path(outputs, path), state, overwrite or state != "new"))
    return jobs, done


# ---------------------------------------------------------------- one job (in any worker)

_LOADED: dict[CatalogueSettings, tuple] = {}  # per process: the separator and chain spec


def load_separator(settings: CatalogueSettings) -> tuple:
    """``(StemSeparator, ChainSpec | None)`` for ``settings``, loaded once per process."""
    if settings not in _LOADED:
        from .chain_spec import load_chain_spec
        from .separator import StemSeparator

        if settings.threads:
            import torch
            torch.set_num_threads(settings.threads)
        separator = StemSeparator(settings.model, stems=settings.stems, device=settings.device, n_q=settings.n_q)
        spec = load_chain_spec(settings.chain, separator.model_stems) if settings.chain else None
        _LOADED.clear()
        _LOADED[settings] = (separator, spec)
    return _LOADED[settings]


def run_job(job: Job, settings: CatalogueSettings) -> JobResult:
    """Separate one file (markers around :func:`separate_file`); failures are returned, not raised."""
    t0 = time.perf_counter()
    try:
        separator, spec = load_separator(settings)
        check_outputs(list(job.outputs), {job.input.resolve()}, job.overwrite)  # before the marker claims them
        base = {**_input_fingerprint(job.input), "settings": settings.fingerprint()}
        _write_marker(job.marker, {"state": "started", **base})
        options = SeparateOptions(settings.fmt, job.overwrite, settings.allow_damaged, settings.normalize)
        report = separate_file(separator, job.input, list(job.outputs), settings.fmt, spec, options)
        _write_marker(job.marker, {"state": "done", **base, "audio_s": report.seconds,
                                   "outputs": [{"path": o.name, "size": o.stat().st_size} for o in report.outputs]})
    except Exception as exc:  # one bad file must not stop the catalogue
        error = str(exc) if isinstance(exc, OSError | ValueError) else f"{type(exc).__name__}: {exc}"
        return JobResult(job.input, "failed", wall_s=time.perf_counter() - t0, error=error)
    return JobResult(job.input, "done", report.outputs, report.seconds, time.perf_counter() - t0,
                     warnings=report.warnings)


# ---------------------------------------------------------------- runners

def _ignore_sigint() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the pool


def _run_pool(jobs: list[Job], settings: CatalogueSettings, workers: int) -> Iterator[JobResult]:
    import multiprocessing
    from functools import partial

    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_ignore_sigint)
    try:
        yield from pool.imap_unordered(partial(run_job, settings=settings), jobs)
        pool.close()
    finally:
        pool.terminate()  # Ctrl-C or an error: workers end; their files' "started" markers remain
        pool.join()


def _ray_init(address: str, cpus: int | None) -> None:
    try:
        import ray
    except ImportError:
        raise CatalogueError("--ray needs Ray: pip install 'stemstream[ray]' (or pip install ray)") from None
    import warnings

    options = {"include_dashboard": False, "log_to_driver": False}
    auth = ("; a cluster started by `ray start` uses token authentication: set RAY_AUTH_MODE=token here "
            "(the token comes from ~/.ray/auth_token or RAY_AUTH_TOKEN)")
    if address == "local":
        ray.init(address="local", num_cpus=cpus, **options)
    elif address == "auto":
        try:
            ray.init(address="auto", **options)
        except ConnectionError as exc:  # no cluster to join: a local instance
            warnings.warn(f"--ray auto: no running Ray cluster could be joined ({exc}{auth}); "
                          "starting a local Ray instance")
            ray.init(address="local", num_cpus=cpus, **options)
    else:
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:
            raise CatalogueError(f"--ray {address}: {exc}{auth}") from None


def _run_ray(jobs: list[Job], settings: CatalogueSettings, address: str, cpus: int | None) -> Iterator[JobResult]:
    import ray

    _ray_init(address, cpus)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(run_job)  # a lost worker's file is simply redone
        pending = [task.remote(job, settings) for job in jobs]
        while pending:  # whatever finished within a second (one wait per file would be O(files^2))
            ready, pending = ray.wait(pending, num_returns=min(len(pending), 64), timeout=1.0)
            yield from ray.get(ready)
    finally:
        ray.shutdown()


def remove_stale_temp_folders(jobs: Sequence[Job], out_dir: Path, older_than: float) -> int:
    """Remove the ``.stemstream-partial-*`` folders that killed workers left (their files are
    redone) in the folders between partial jobs' outputs and ``out_dir``, if older than
    ``older_than`` (a ``time.time()``: a concurrent run's fresh ones are spared); returns how many."""
    folders = set()
    top = out_dir.resolve()
    for job in jobs:
        if job.state == "partial":
            for parent in job.outputs[0].resolve().parents:
                folders.add(parent)
                if parent == top or top not in parent.parents:
                    break
    removed = 0
    for folder in folders:
        for temp in folder.glob(TEMP_PREFIX + "*") if folder.is_dir() else ():
            if temp.is_dir() and temp.stat().st_mtime < older_than:
                shutil.rmtree(temp, ignore_errors=True)
                removed += 1
    return removed


def run_catalogue(pairs: Sequence[tuple[Path, Path]], out_dir: str | Path, settings: CatalogueSettings,
                  jobs: int = 1, ray_address: str | None = None, overwrite: bool = False,
                  on_result: Callable[[JobResult, int, int], None] | None = None) -> list[JobResult]:
    """Separate every ``(input, output folder)`` pair of :func:`expand_inputs` (``out_dir``: the
    ``--out`` they were expanded for); complete files are skipped (see the module docstring).

    ``on_result(result, n, total)`` is called as each file finishes. Returns one result per
    input, in input order. The separator is loaded here first (bad model, stems or chain file:
    an error before any work) and, with ``jobs=1``, used for every file.
    """
    separator, spec = load_separator(settings)
    with_mix = spec is not None and spec.mix is not None
    todo, results = plan(pairs, settings, separator.stems, with_mix, overwrite)
    total = len(pairs)
    for n, r in enumerate(results, 1):
        if on_result is not None:
            on_result(r, n, total)
    start = time.time()
    workers = replace(settings, threads=settings.threads or 1)  # one thread per worker process
    if ray_address is not None:
        runner = _run_ray(todo, workers, ray_address, jobs if jobs > 1 else None)
    elif jobs > 1 and len(todo) > 1:
        runner = _run_pool(todo, workers, min(jobs, len(todo)))
    else:
        runner = (run_job(job, settings) for job in todo)
    try:
        for r in runner:
            results.append(r)
            if on_result is not None:
                on_result(r, len(results), total)
    finally:
        remove_stale_temp_folders(todo, Path(out_dir), start)
    order = {p.resolve(): i for i, (p, _) in enumerate(pairs)}
    return sorted(results, key=lambda r: order.get(r.input.resolve(), len(order)))


def summary_json(results: Sequence[JobResult]) -> dict:
    """Counts, audio seconds and per-file records (for reports and benchmarks)."""
    return {"files": len(results), **{s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")},
            "audio_s": round(sum(r.audio_s for r in results), 3),
            "results": [{**asdict(r), "input": str(r.input), "outputs": [str(o) for o in r.outputs]} for r in results]}


# ---------------------------------------------------------------- command line

def is_catalogue(inputs: Sequence[str], jobs: int | None, ray_address: str | None) -> bool:
    """Whether ``stemstream separate`` runs as a catalogue: ``--jobs``, ``--ray``, or an input
    that is a folder, a glob pattern or an ``@LIST``."""
    return (jobs is not None or ray_address is not None
            or any(not Path(s).is_file() and (s.startswith("@") or glob.has_magic(s) or Path(s).is_dir())
                   for s in inputs))


def run_from_args(args) -> int:
    """``stemstream separate`` in catalogue mode: exit status 0, 1 (a file failed), 2 (bad
    arguments) or 130/143 (stopped by Ctrl-C/SIGTERM: rerun the same command to resume)."""
    import sys

    from stemstream_cli import stopped_by

    from .cli import _check_args

    # a ValueError (CatalogueError is one) is the user's to fix: "stemstream separate: error: ..." (status 2)
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be 1 or more worker processes, got {args.jobs}")
    pairs = expand_inputs(args.inputs, args.out)
    problem = _check_args(_namespace_with(args, inputs=[]))  # inputs: each file's own failure, the rest go on
    if problem is not None:
        raise ValueError(problem)
    stems = tuple(s.strip() for s in args.stems.split(",") if s.strip()) if args.stems else None
    settings = CatalogueSettings(args.model, stems, args.format, args.chain, args.n_q, args.device, args.normalize,
                                 args.allow_damaged)
    quiet = args.quiet

    def report(r: JobResult, n: int, total: int) -> None:
        if r.status == "failed":
            print(f"[{n}/{total}] FAILED {r.input}: {r.error}", file=sys.stderr)
        elif not quiet:
            how = "complete, skipped" if r.status == "skipped" else f"{r.audio_s:.1f} s of audio in {r.wall_s:.1f} s"
            where = r.outputs[0] if len(r.outputs) == 1 else r.outputs[0].parent  # a stem file, or the stems' folder
            print(f"[{n}/{total}] {r.input} -> {where} ({how})", flush=True)
        for note in r.warnings:
            print(f"warning: {r.input}: {note}", file=sys.stderr)

    try:
        results = run_catalogue(pairs, args.out, settings, args.jobs or 1, args.ray, args.overwrite, report)
    except KeyboardInterrupt:
        how, status = stopped_by()
        print(f"stopped by {how}: files not finished are redone when the same command runs again "
              "(finished ones are skipped)", file=sys.stderr)
        return status
    except ValueError:
        raise
    except Exception as exc:  # the model, stems or chain file (loaded before any work)
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    counts = summary_json(results)
    print(f"{counts['done']} separated, {counts['skipped']} already complete, {counts['failed']} failed "
          f"(of {counts['files']})", file=sys.stderr)
    return 1 if counts["failed"] else 0


def _namespace_with(args, **changes):
    """A copy of an ``argparse.Namespace`` with ``changes``."""
    import argparse
    return argparse.Namespace(**{**vars(args), **changes})
