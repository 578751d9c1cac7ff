"""The training side of ``model``: multitrack data readers, Slakh-style rendering, augmentation,
losses, training, evaluation and their ``stemstream`` subcommands (render, eval, train, pack).

It builds on the inference runtime in :mod:`model` (config, layers, separator, runtime,
checkpoints); nothing in :mod:`model` itself, ``rt``, ``plugin_host`` or ``latency`` imports it
(``tests/test_layering.py`` checks that).
"""
