"""Checkpoint round trip and clear errors for missing, corrupt and mismatched checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import model
from model.checkpoint import CONFIG_FILE, SAFETENSORS_FILE, TORCH_FILE
from tests.helpers import small_config


def test_round_trip_safetensors_and_torch(tmp_path, small_model, rng):
    x = (0.3 * rng.standard_normal((1, 500))).astype(np.float32)
    ref = model.StreamingSeparator(small_model).separate(x)
    model.save_separator(small_model, tmp_path / "st")
    loaded = model.load(tmp_path / "st")
    assert loaded.stems == small_model.config.stems
    np.testing.assert_array_equal(loaded.separate(x), ref)
    (tmp_path / "pt").mkdir()
    small_model.config.save(tmp_path / "pt" / CONFIG_FILE)
    torch.save(small_model.state_dict(), tmp_path / "pt" / TORCH_FILE)
    np.testing.assert_array_equal(model.load(tmp_path / "pt").separate(x), ref)


def test_missing_checkpoint_names_what_exists(tmp_path):
    with pytest.raises(model.CheckpointError, match="no model 'nope'"):
        model.load("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(model.CheckpointError, match="config.json is missing"):
        model.load(tmp_path / "empty")
    small_config().save(tmp_path / "empty" / CONFIG_FILE)
    with pytest.raises(model.CheckpointError, match="no weights"):
        model.load(tmp_path / "empty")


def test_corrupt_files_give_clear_errors(tmp_path, small_model):
    d = model.save_separator(small_model, tmp_path / "m")
    data = (d / SAFETENSORS_FILE).read_bytes()
    (d / SAFETENSORS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(model.CheckpointError, match="model.safetensors is corrupt"):
        model.load(d)
    (d / CONFIG_FILE).write_text("{not json")
    with pytest.raises(model.CheckpointError, match="config.json is not valid JSON"):
        model.load(d)
    (d / CONFIG_FILE).write_text(json.dumps({"strides": [4, 4], "colour": "red"}))
    with pytest.raises(model.CheckpointError, match="unknown SeparatorConfig fields"):
        model.load(d)


def test_mismatched_checkpoint_names_the_tensor(tmp_path, small_model):
    d = model.save_separator(small_model, tmp_path / "m")
    small_config(channels=(8, 16, 24)).save(d / CONFIG_FILE)
    with pytest.raises(model.CheckpointError, match="does not match .*shape mismatch"):
        model.load(d)
