"""Effect chains described in a data file (JSON or YAML), for ``stemstream separate --chain``.

The file is data, never code: YAML goes through ``yaml.safe_load``. Its shape::

    stems:                      # a chain per stem, applied to that stem's output
      drums:
        - {plugin: Compressor, threshold_db: -18, ratio: 4}
      vocals:
        - {plugin: Reverb, room_size: 0.6, wet_level: 0.25}
    mix:                        # a chain applied to the sum of the (processed) stems
      - {plugin: Limiter, threshold_db: -1}
      - {vst3: /path/to/Plugin.vst3, plugin_name: optional-for-shells, Drive: 0.4}

``plugin`` names a pedalboard built-in effect, and every other key is one of its parameters;
``vst3`` is a plugin file loaded with ``pedalboard.load_plugin``, every other key (except
``plugin_name``) one of its parameters. Unknown plugins and parameters are errors naming what
exists.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pedalboard
import yaml

from .chain import Chain

_NOT_EFFECTS = {"Chain", "Mix", "Pedalboard", "PluginContainer", "Plugin", "ExternalPlugin", "VST3Plugin",
                "AudioUnitPlugin", "IIRFilter"}


class ChainSpecError(ValueError):
    """A chain file that cannot be turned into plugins; the message names the place and the fix."""


@dataclass
class ChainSpec:
    """Chains read from a file: one per named stem, and one for the mix (None when absent)."""

    stems: dict[str, Chain]
    mix: Chain | None


def builtin_effects() -> dict[str, type]:
    """pedalboard's built-in effect classes by name."""
    found = {}
    for name in dir(pedalboard):
        obj = getattr(pedalboard, name)
        if (isinstance(obj, type) and issubclass(obj, pedalboard.Plugin) and not name.startswith("_")
                and name not in _NOT_EFFECTS):
            found[name] = obj
    return found


def _parameters_of(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if isinstance(getattr(cls, n, None), property)
                  and n not in ("is_effect", "is_instrument"))


def build_plugin(entry: Any, where: str) -> pedalboard.Plugin:
    """One plugin from its description ``entry`` (``where`` locates it in error messages)."""
    if not isinstance(entry, dict):
        raise ChainSpecError(f"{where}: a plugin is a mapping like {{plugin: Reverb, room_size: 0.5}}, got {entry!r}")
    params = dict(entry)
    if "vst3" in params:
        path = Path(str(params.pop("vst3"))).expanduser()
        name = params.pop("plugin_name", None)
        if not path.exists():
            raise ChainSpecError(f"{where}: VST3 plugin {path} does not exist")
        try:
            return pedalboard.load_plugin(str(path), parameter_values=params, plugin_name=name)
        except Exception as exc:  # pedalboard raises ImportError/ValueError/RuntimeError here
            raise ChainSpecError(f"{where}: cannot load VST3 {path} with parameters {params}: {exc}") from exc
    if "plugin" not in params:
        raise ChainSpecError(f"{where}: each plugin needs a 'plugin' (a pedalboard built-in) or 'vst3' (a path) key")
    name = params.pop("plugin")
    effects = builtin_effects()
    if name not in effects:
        raise ChainSpecError(f"{where}: unknown plugin {name!r}; pedalboard's built-in effects are "
                             f"{', '.join(sorted(effects))} (or use 'vst3: PATH')")
    cls = effects[name]
    known = _parameters_of(cls)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ChainSpecError(f"{where}: {name} has no parameter(s) {unknown}; its parameters are {', '.join(known)}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ChainSpecError(f"{where}: bad value for {name}: {exc}") from exc


def build_chain(entries: Any, where: str) -> Chain:
    if not isinstance(entries, list):
        raise ChainSpecError(f"{where}: expected a list of plugins, got {type(entries).__name__}")
    return Chain([build_plugin(e, f"{where}[{i}]") for i, e in enumerate(entries)])


def load_chain_spec(path: str | Path, stems: tuple[str, ...]) -> ChainSpec:
    """Read a JSON (``.json``) or YAML (anything else) chain file for a model with ``stems``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ChainSpecError(f"cannot read chain file {path}: {exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ChainSpecError(f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict) or not data or set(data) - {"stems", "mix"}:
        raise ChainSpecError(f"{path}: the top level must be a mapping with 'stems' and/or 'mix', got "
                             f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    stem_part = data.get("stems") or {}
    if not isinstance(stem_part, dict):
        raise ChainSpecError(f"{path}: 'stems' must map stem names to plugin lists")
    unknown = sorted(set(stem_part) - set(stems))
    if unknown:
        raise ChainSpecError(f"{path}: no stem(s) {unknown} in this model; its stems are {', '.join(stems)}")
    chains = {name: build_chain(entries, f"{path}: stems.{name}") for name, entries in stem_part.items()}
    mix = build_chain(data["mix"], f"{path}: mix") if "mix" in data else None
    return ChainSpec(stems=chains, mix=mix)
