"""Which separator a measurement runs: a shipped model or checkpoint, or random weights of a config.

The trained default may not exist yet; random weights of the same config cost the same compute,
and every result says which it measured.
"""
from __future__ import annotations

from pathlib import Path

import torch

import model

from .profile import ModelInfo

DEFAULT_CONFIG = "default"


def load_subject(model_name: str | None, config_json: str | None,
                 seed: int = 0) -> tuple[model.RQVAESeparator, ModelInfo]:
    """The network to measure and its description.

    ``model_name``: a shipped model's name or a checkpoint directory (trained weights).
    ``config_json``: a ``SeparatorConfig`` JSON file, or ``"default"`` for ``SeparatorConfig()``,
    built with random weights (seeded). Give one or the other; with neither, the shipped
    default model. Raises :class:`model.CheckpointError` or ``ValueError`` with what to do.
    """
    if model_name is not None and config_json is not None:
        raise ValueError("give either --model (trained weights) or --config-json (random weights), not both")
    if config_json is None:
        name = model_name or model.DEFAULT_MODEL
        try:
            return model.load_separator(name), ModelInfo(str(name), random_weights=False)
        except model.CheckpointError as exc:
            raise model.CheckpointError(
                f"{exc}. To measure the default architecture's compute without trained weights, "
                f"use --config-json {DEFAULT_CONFIG} (random weights)") from None
    if config_json == DEFAULT_CONFIG:
        config, label = model.SeparatorConfig(), "random:SeparatorConfig()"
    else:
        path = Path(config_json)
        if not path.is_file():
            raise ValueError(f"--config-json {config_json}: no such file; give a SeparatorConfig JSON "
                             f"(as saved beside a model's weights) or '{DEFAULT_CONFIG}'")
        try:
            config = model.SeparatorConfig.load(path)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"--config-json {config_json} is not a valid SeparatorConfig: {exc}") from None
        label = f"random:{path.name}"
    torch.manual_seed(seed)
    return model.RQVAESeparator(config).eval(), ModelInfo(label, random_weights=True)
