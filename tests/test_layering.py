"""The live and hosting side never loads the training side of ``model``."""
from __future__ import annotations

import subprocess
import sys

TRAINING_SIDE = ("model.train", "model.data", "model.render", "model.augment", "model.losses",
                 "model.evaluate", "model.warm_start", "model.cli")

_PROBE = """
import importlib, pkgutil, sys
for name in ("rt", "plugin_host", "latency"):
    pkg = importlib.import_module(name)
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{name}.{info.name}")
print("\\n".join(sorted(sys.modules)))
"""


def test_rt_plugin_host_and_latency_never_import_training_modules() -> None:
    # a fresh interpreter: this test process has imported the training side for other tests
    loaded = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert "rt.engine" in loaded and "plugin_host.separator" in loaded and "latency.profile" in loaded
    offending = [m for m in loaded if any(m == t or m.startswith(t + ".") for t in TRAINING_SIDE)]
    assert offending == [], f"the inference side pulls in training modules: {offending}"
