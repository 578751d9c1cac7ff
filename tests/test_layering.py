"""The inference side (``model`` itself, ``rt``, ``plugin_host``, ``latency``) never loads ``model.training``."""
from __future__ import annotations

import subprocess
import sys

TRAINING_SIDE = "model.training"

# imports every module of the inference side (model's own, training excluded) in a fresh interpreter
_PROBE = """
import importlib, pkgutil, sys
for name in ("model", "rt", "plugin_host", "latency"):
    pkg = importlib.import_module(name)
    for info in pkgutil.iter_modules(pkg.__path__):
        if f"{name}.{info.name}" != TRAINING_SIDE:
            importlib.import_module(f"{name}.{info.name}")
print("\\n".join(sorted(sys.modules)))
"""


def _loaded_modules(probe: str) -> list[str]:
    # a fresh interpreter: this test process has imported the training side for other tests
    run = subprocess.run([sys.executable, "-c", f"TRAINING_SIDE = {TRAINING_SIDE!r}\n" + probe],
                         capture_output=True, text=True, check=True)
    return run.stdout.split()


def _training_modules(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m == TRAINING_SIDE or m.startswith(TRAINING_SIDE + ".")]


def test_inference_side_never_imports_training_modules() -> None:
    loaded = _loaded_modules(_PROBE)
    assert {"model.runtime", "model.numba_step", "rt.engine", "plugin_host.separator", "latency.profile"} <= set(loaded)
    offending = _training_modules(loaded)
    assert offending == [], f"the inference side pulls in training modules: {offending}"


def test_the_probe_sees_the_training_side_when_it_is_imported() -> None:
    # the same probe plus one training import reports it: the check above can fail
    loaded = _loaded_modules(_PROBE + "import model.training.train\nprint('\\n'.join(sorted(sys.modules)))\n")
    assert {"model.training.train", "model.training.data", "model.training.losses"} <= set(_training_modules(loaded))
