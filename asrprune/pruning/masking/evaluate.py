"""Evaluate a method's outcome: export every sparse model compactly, decode the test sets from the exports.

Decoding the compact exports (not the training checkpoints) checks on every run that an export is loadable and
sufficient. A multilingual model is exported once with all its pathways (and one pathway alone, for its size);
monolingual models are exported per language.
"""
from __future__ import annotations

from pathlib import Path

import torch

from asrprune.decoding.decode_dir import decode_data_dir
from asrprune.model.store import load_model
from asrprune.pruning.masking.export import dense_state_bytes, export_sparse
from asrprune.pruning.masking.masked_models import read_masks, with_masks
from asrprune.pruning.masking.methods import Outcome, Setup
from asrprune.training.lightning_module import CTCModule


def decode_languages(setup: Setup, models: dict[str, str], out_dir: Path) -> dict:
    """Greedy PER and lexicon-beam WER (percent) per language of ``setup``, decoding ``models[lang]``."""
    per, wer = {}, {}
    for lang in setup.languages:
        lexicon = setup.data / f"lang_{lang}" / "lexicon.txt"
        rows = decode_data_dir(models[lang], setup.data / f"test_{lang}", out_dir / f"decode_test_{lang}",
                               lexicon_path=lexicon if lexicon.exists() else None)
        per[lang] = rows[0].counts.error_rate
        if len(rows) > 1:
            wer[lang] = rows[1].counts.error_rate
    return {"per": per, "wer": wer}


def mask_statistics(setup: Setup, outcome: Outcome) -> dict:
    """Per-language sparsity, union sparsity and overlap of the masks serving each language (for monolingual
    models: their masks gathered as if they were pathways of one model)."""
    languages = setup.languages
    if outcome.multilingual:
        model = load_model(outcome.models[languages[0]]).model
        order = model.languages
        stats = model.masks.statistics(order)
        if not model.masks.state.per_language:
            return {**stats, "languages": languages, "overlap": [[1.0] * len(languages) for _ in languages],
                    "sparsity": {lang: stats["sparsity"]["shared"] for lang in languages}}
    else:
        dense = CTCModule.from_file(setup.dense_checkpoint)
        per_lang = {lang: read_masks(outcome.models[lang]) for lang in languages}
        names = next(iter(per_lang.values()))
        order = dense.model.languages
        stacked = {name: torch.cat([per_lang.get(lang, per_lang[languages[0]])[name][:1] for lang in order])
                   for name in names}
        stats = with_masks(dense, {"per_language": True}, stacked).model.masks.statistics(order)
    # Sparsity and overlap of the languages evaluated here; the union covers every pathway stored in the model.
    keep = [order.index(lang) for lang in languages]
    return {**stats, "languages": languages, "sparsity": {lang: stats["sparsity"][lang] for lang in languages},
            "overlap": [[stats["overlap"][i][j] for j in keep] for i in keep]}


def evaluate(setup: Setup, outcome: Outcome, out_dir: Path) -> dict:
    """Export and decode; return the result record (error rates, cost, sizes, mask statistics)."""
    exports_dir = out_dir / "exports"
    languages = setup.languages
    if outcome.multilingual:
        full = export_sparse(outcome.models[languages[0]], exports_dir / "multilingual.pt")
        pathway = export_sparse(outcome.models[languages[0]], exports_dir / f"pathway_{languages[0]}.pt", languages[0])
        decoded = {lang: full["path"] for lang in languages}
        sizes = {"export_bytes": full["bytes"], "pathway_export_bytes": pathway["bytes"]}
    else:
        exports = {lang: export_sparse(outcome.models[lang], exports_dir / f"{lang}.pt", lang) for lang in languages}
        decoded = {lang: e["path"] for lang, e in exports.items()}
        sizes = {"export_bytes": sum(e["bytes"] for e in exports.values()),
                 "pathway_export_bytes": exports[languages[0]]["bytes"]}
    scores = decode_languages(setup, decoded, out_dir)
    return {
        **scores,
        "steps": outcome.steps,
        "train_seconds": outcome.seconds,
        "multilingual": outcome.multilingual,
        **sizes,
        "dense_bytes": dense_state_bytes(load_model(setup.dense_checkpoint).model),
        "masks": mask_statistics(setup, outcome),
        "stages": outcome.stages,
    }
