"""Compact export of a masked model: the multilingual sparse model, or the sparse monolingual model of one pathway.

The file holds the kept values of each prunable weight (θ at the union of the exported mask rows, float32) and the
rows bit-packed (:func:`asrprune.model.mask_storage.pack_sparse`), plus the dense remainder (front-end, norms,
biases, output layer), written by :func:`asrprune.model.store.save_model`; every reader of models reads it
(:func:`asrprune.model.store.load_model`: ``asrprune decode``, ``add-language``, ``train --init``, the pruning
methods). A pathway export keeps only its language (the model's other languages are dropped from its
hyperparameters).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from torch import nn

from asrprune.model.mask_storage import is_mask_state_key
from asrprune.model.store import StoredModel, load_model, save_model


def dense_state_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights stored densely in float32 (parameters + persistent buffers, no masks/scores)."""
    return sum(
        v.numel() * v.element_size() for k, v in model.state_dict().items() if not is_mask_state_key(k)
    )


def export_sparse(checkpoint: str | Path, out: str | Path, lang: str | None = None) -> dict:
    """Write the compact export of ``checkpoint`` (all languages, or the pathway of ``lang``) to ``out``.

    Returns ``{"path", "bytes", "dense_bytes", "languages", "kept_fraction"}`` (``kept_fraction``: stored prunable
    values / prunable weights).
    """
    stored = load_model(checkpoint)
    masks = stored.model.masks
    if masks is None:
        raise ValueError(f"{checkpoint}: a dense model has no masks to export")
    hparams = dict(stored.hparams)
    languages = stored.languages
    rows = list(range(masks.state.num_masks))
    if lang is not None:
        if lang not in languages:
            raise ValueError(f"{checkpoint}: no language {lang!r} (languages {languages})")
        rows = [stored.model.mask_row(lang)]
        hparams["language_tokens"] = {lang: hparams["language_tokens"][lang]}
    per_language = masks.state.per_language and lang is None
    hparams["model"] = {**hparams["model"], "masks": {**masks.spec, "per_language": per_language}}
    save_model(StoredModel(stored.model, hparams), out, mask_rows=rows)
    kept = sum(int(masks.mask(name)[rows].any(0).sum()) for name in masks.names)
    return {
        "path": str(out),
        "bytes": Path(out).stat().st_size,
        "dense_bytes": dense_state_bytes(stored.model),
        "languages": [lang] if lang else languages,
        "kept_fraction": kept / masks.num_weights(),
    }


def run_cli(args: argparse.Namespace) -> None:
    info = export_sparse(args.checkpoint, args.out, args.lang)
    print(json.dumps(info, indent=2))
