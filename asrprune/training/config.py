"""YAML training configs with ``--set section.key=value`` overrides from the command line."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

DEFAULT_CONFIG = {
    "seed": 0,
    "model": {
        "num_mel_bins": 80,
        "encoder": {},
        "specaug": {
            "apply_time_warp": True,
            "time_warp_window": 5,
            "apply_freq_mask": True,
            "freq_mask_width_range": [0, 27],
            "num_freq_mask": 2,
            "apply_time_mask": True,
            "time_mask_width_ratio_range": [0.0, 0.05],
            "num_time_mask": 5,
        },
        "output_layer": {"type": "flat"},
        "restrict_to_language_tokens": True,
    },
    "data": {
        "speed_perturb": [0.9, 1.0, 1.1],
        "max_batch_seconds": 60.0,
        "max_batch_size": 32,
        "single_language_batches": False,
        "num_workers": 1,
        "cmvn_max_utterances": 2000,
        "feature_cache": None,  # folder for cached filterbanks (recipes use dump/); None extracts every time
    },
    "optim": {"lr": 2.0e-3, "weight_decay": 1.0e-3, "warmup_fraction": 0.15},
    "trainer": {
        "max_steps": 1500,
        "val_check_interval": 250,
        "accelerator": "auto",
        "devices": 1,
        "strategy": "auto",
        "num_nodes": 1,
        "precision": "auto",
        "gradient_clip_val": 5.0,
        "log_every_n_steps": 25,
    },
}


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively with ``override`` (neither is modified)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Defaults, updated by the YAML file at ``path``, updated by ``overrides`` like ``trainer.max_steps=100``.

    Override values are parsed as YAML (``100`` is an int, ``[0.9,1.0]`` a list, ``flat`` a string).
    """
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config must be a YAML mapping")
        unknown = sorted(set(loaded) - set(DEFAULT_CONFIG))
        if unknown:
            raise ValueError(f"{path}: unknown top-level keys {unknown}; known: {sorted(DEFAULT_CONFIG)}")
        config = deep_merge(config, loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like section.key=value")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
        node[leaf] = _parse_value(raw)
    return config


def _parse_value(raw: str):
    """YAML scalar parsing, plus numbers like ``1e-3`` that YAML 1.1 (PyYAML) leaves as strings."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value
