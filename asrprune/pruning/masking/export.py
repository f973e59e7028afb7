"""Compact export of a masked model: the multilingual sparse model, or the sparse monolingual model of one pathway.

The file holds the kept values of each prunable weight (θ at the union of the exported mask rows, float32) and the
rows bit-packed (:func:`asrprune.model.masks.pack_sparse`), plus the dense remainder (front-end, norms, biases,
output layer); ``asrprune decode --checkpoint`` reads it (:func:`asrprune.decoding.decode_dir.load_model`).
A pathway export keeps only its language (the model's other languages are dropped from its hyperparameters).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from asrprune.decoding.decode_dir import load_model
from asrprune.model.masks import SPARSE_FORMAT, pack_sparse
from asrprune.pruning.masking.masked_models import ENCODER_PREFIX
from asrprune.training.lightning_module import CTCModule


def dense_state_bytes(module: CTCModule) -> int:
    """Bytes of the model's weights stored densely in float32 (parameters + persistent buffers, no masks/scores)."""
    return sum(
        v.numel() * v.element_size() for k, v in module.state_dict().items() if ".parametrizations.weight.0." not in k
    )


def export_sparse(checkpoint: str | Path, out: str | Path, lang: str | None = None) -> dict:
    """Write the compact export of ``checkpoint`` (all languages, or the pathway of ``lang``) to ``out``.

    Returns ``{"path", "bytes", "dense_bytes", "languages", "kept_fraction"}`` (``kept_fraction``: stored prunable
    values / prunable weights).
    """
    module = load_model(checkpoint)
    masks = module.model.masks
    if masks is None:
        raise ValueError(f"{checkpoint}: a dense model has no masks to export")
    hparams = dict(module.hparams)
    languages = module.model.languages
    rows = list(range(masks.state.num_masks))
    if lang is not None:
        if lang not in languages:
            raise ValueError(f"{checkpoint}: no language {lang!r} (languages {languages})")
        rows = [languages.index(lang) if masks.state.per_language else 0]
        hparams["language_tokens"] = {lang: hparams["language_tokens"][lang]}
    per_language = masks.state.per_language and lang is None
    hparams["model"] = {**hparams["model"], "masks": {"per_language": per_language, "scores": False,
                                                      "dormant_trainable": False}}
    packed = pack_sparse(module.state_dict(), masks, rows, ENCODER_PREFIX)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": SPARSE_FORMAT, "hyper_parameters": hparams, "encoder_prefix": ENCODER_PREFIX, **packed}, out)
    kept = sum(entry["values"].numel() for entry in packed["sparse"].values())
    return {
        "path": str(out),
        "bytes": out.stat().st_size,
        "dense_bytes": dense_state_bytes(module),
        "languages": [lang] if lang else languages,
        "kept_fraction": kept / masks.num_weights(),
    }


def run_cli(args: argparse.Namespace) -> None:
    info = export_sparse(args.checkpoint, args.out, args.lang)
    print(json.dumps(info, indent=2))
