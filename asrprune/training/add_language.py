"""``asrprune add-language``: make a trained model serve a language it has not seen, in one command.

The new checkpoint keeps the encoder and the output layer's learned maps, adds the new language's phones (from its
lexicon) to the token list, and registers the language, so ``asrprune decode`` recognises it zero-shot and
``asrprune train --init`` fine-tunes it few-shot. The languages the model already knew keep working. It starts
from any model file (:func:`asrprune.model.store.load_model`: a checkpoint, a pruned model, a compact export).

A model with per-language masks (ASR pathways, :mod:`asrprune.model.mask_registry`) has no pathway for the new language;
``pathway`` chooses one: ``union`` (every weight some pathway keeps: the whole pruned model), ``closest`` (the
pathway of the known language whose phone inventory overlaps the new one's most, Jaccard; a proxy for phonological
closeness that needs only the lexicons), or a language code (that language's pathway). ``asrprune prune grow`` then
adapts the chosen pathway during few-shot fine-tuning.
"""
from __future__ import annotations

import argparse

from asrprune.cli_options import add_checkpoint, add_lang, add_out
from asrprune.model.mask_storage import append_mask_row
from asrprune.model.store import save_model
from asrprune.phonology.lexicon import Lexicon
from asrprune.training.lightning_module import CTCModule


def closest_language(language_tokens: dict[str, list[str]], phones: set[str]) -> str:
    """The language whose token set has the largest Jaccard overlap with ``phones`` (ties: first in order)."""
    return max(language_tokens, key=lambda lang: len(phones & set(language_tokens[lang]))
               / len(phones | set(language_tokens[lang])))


def add_language(module: CTCModule, lang: str, phones: set[str], pathway: str = "union") -> CTCModule:
    """A copy of ``module`` whose token list also holds ``phones`` and whose languages include ``lang``; with
    per-language masks, ``lang`` gets the pathway chosen by ``pathway`` (see the module docstring)."""
    model = module.model
    new_phones = sorted(phones - set(model.tokens))
    tokens = model.tokens + new_phones
    language_tokens = {**dict(module.hparams.language_tokens), lang: sorted(phones)}
    adapted = CTCModule(
        tokens, language_tokens, module.hparams.model, module.hparams.optim, module.hparams.max_steps,
        module.hparams.target_unit,
    )
    encoder_state = model.encoder.state_dict()
    has_pathways = model.masks is not None and model.masks.state.per_language
    if pathway != "union" and not has_pathways:
        raise ValueError(f"--pathway {pathway!r}: this model has no per-language masks (pathways) to choose from")
    if has_pathways:
        known = dict(module.hparams.language_tokens)
        source = closest_language(known, phones) if pathway == "closest" else pathway
        if source != "union" and source not in model.languages:
            raise ValueError(f"--pathway {pathway!r}: use union, closest or one of {model.languages}")
        rows = [model.mask_row(lang) for lang in (model.languages if source == "union" else [source])]
        encoder_state = append_mask_row(encoder_state, model.masks, rows)
    adapted.model.encoder.load_state_dict(encoder_state)
    adapted.model.cmvn.load_state_dict(model.cmvn.state_dict())
    adapted.model.output_layer = model.output_layer.with_tokens(tokens)
    return adapted


def run_cli(args: argparse.Namespace) -> None:
    module = CTCModule.from_file(args.checkpoint)
    if module.hparams.target_unit != "phone":
        raise ValueError(f"{args.checkpoint}: only phone models can add a language through its lexicon")
    if args.lang in module.model.languages:
        raise ValueError(f"{args.checkpoint}: the model already knows {args.lang!r} ({module.model.languages})")
    phones = Lexicon.load(args.lexicon).phones()
    adapted = add_language(module, args.lang, phones, args.pathway)
    save_model(adapted.stored(), args.out)
    new = len(adapted.model.tokens) - len(module.model.tokens)
    print(
        f"{args.out}: {args.lang} added with {len(phones)} phones ({new} new to the model, "
        f"output layer {module.hparams.model.get('output_layer', {}).get('type', 'flat')}); "
        f"languages {adapted.model.languages}"
    )


def register_cli(subparsers) -> None:
    """Add the ``add-language`` sub-command."""
    parser = subparsers.add_parser(
        "add-language",
        description="Add a language the model was not trained on: its lexicon's phones join the token list and "
        "the language gets its own id. JoinAP output layers derive the new phones' embeddings from their "
        "phonological features; a flat layer keeps the rows of phones it already had and gives new phones "
        "untrained rows. Decode the result directly (zero-shot) or fine-tune it with 'asrprune train --init'.",
        epilog="example: asrprune add-language --checkpoint exp/multi/checkpoints/best.ckpt --lang pl "
        "--lexicon data/lang_pl/lexicon.txt --out exp/multi/pl_zero_shot.ckpt",
    )
    add_checkpoint(parser, "the trained model to extend")
    add_lang(parser, "language code of the new language")
    parser.add_argument("--lexicon", required=True, help="the new language's lexicon.txt")
    add_out(parser, "checkpoint to write")
    parser.add_argument(
        "--pathway", default="union", help="models with per-language masks: the new language's mask, 'union' of all "
        "pathways, 'closest' (largest phone-inventory overlap) or a known language's code (default %(default)s)"
    )
    parser.set_defaults(func=run_cli)
