"""Saving and loading separators: a directory with ``config.json`` and the weights."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import SeparatorConfig
from .runtime import StreamingSeparator
from .separator import RQVAESeparator

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
TORCH_FILE = "model.pt"
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "musdb4"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not match its configuration."""


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package (``model/weights/NAME``)."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / CONFIG_FILE).is_file())


def resolve(name_or_path: str | Path) -> Path:
    """The checkpoint directory for a shipped model's name or a path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file; a checkpoint is a directory holding {CONFIG_FILE} "
                              f"and {SAFETENSORS_FILE} (or {TORCH_FILE})")
    shipped = SHIPPED_DIR / str(name_or_path)
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    raise CheckpointError(f"no model {str(name_or_path)!r}: not a directory, and not a shipped model "
                          f"(shipped: {', '.join(shipped_models()) or 'none'})")


def save_separator(model: RQVAESeparator, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``directory``."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save(out / CONFIG_FILE)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(out / SAFETENSORS_FILE))
    return out


def _read_config(directory: Path) -> SeparatorConfig:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: a checkpoint directory needs its {CONFIG_FILE}")
    try:
        return SeparatorConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); restore it from the model's source") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a valid separator config: {exc}") from exc


def _read_weights(directory: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    st, pt = directory / SAFETENSORS_FILE, directory / TORCH_FILE
    if st.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return st, load_file(str(st))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{st} is corrupt or truncated ({exc}); re-save or re-download it") from exc
    if pt.is_file():
        try:
            state = torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad pickle/zip
            raise CheckpointError(f"{pt} is corrupt or not a weights-only torch file ({exc})") from exc
        if not isinstance(state, dict):
            raise CheckpointError(f"{pt} holds a {type(state).__name__}, not a state dict of tensors")
        return pt, state
    raise CheckpointError(f"no weights in {directory}: expected {SAFETENSORS_FILE} or {TORCH_FILE}")


def load_separator(name_or_path: str | Path) -> RQVAESeparator:
    """The network (eval mode, CPU) of a shipped model's name or a checkpoint directory."""
    directory = resolve(name_or_path)
    config = _read_config(directory)
    weights_path, state = _read_weights(directory)
    model = RQVAESeparator(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} "
                         f"vs config {tuple(expected[k].shape)}")
        raise CheckpointError(f"{weights_path} does not match {directory / CONFIG_FILE}: " + "; ".join(parts))
    model.load_state_dict(state)
    return model.eval()


def load(name_or_path: str | Path = DEFAULT_MODEL, device: str = "cpu", n_q: int | None = None,
         backend: str = "auto") -> StreamingSeparator:
    """A ready :class:`StreamingSeparator` for a shipped model's name or a checkpoint directory.

    ``backend``: ``"auto"`` (numba on the CPU, torch elsewhere), ``"torch"``, or ``"numba"``
    (CPU only) for the numba frame step.
    """
    return StreamingSeparator(load_separator(name_or_path), device=device, n_q=n_q, backend=backend)
