"""stemstream's separator: a causal, streaming residual-quantized VAE (after arXiv 2408.07020).

The ground floor of the project: it knows no audio device, thread, host or profiler. This
package is the inference runtime; the training side (data, rendering, losses, training,
evaluation) is the subpackage :mod:`model.training`, which nothing here imports.
"""
from .checkpoint import DEFAULT_MODEL, CheckpointError, load, load_separator, save_separator, shipped_models
from .config import SeparatorConfig, musdb_config
from .runtime import StreamingSeparator
from .separator import RQVAESeparator, SeparatorOutput

__all__ = [
    "DEFAULT_MODEL", "CheckpointError", "RQVAESeparator", "SeparatorConfig", "SeparatorOutput",
    "StreamingSeparator", "load", "load_separator", "musdb_config", "save_separator", "shipped_models",
]
