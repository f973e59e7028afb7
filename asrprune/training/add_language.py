"""``asrprune add-language``: make a trained model serve a language it has not seen, in one command.

The new checkpoint keeps the encoder and the output layer's learned maps, adds the new language's phones (from its
lexicon) to the token list, and registers the language, so ``asrprune decode`` recognises it zero-shot and
``asrprune train --init`` fine-tunes it few-shot. The languages the model already knew keep working.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch

from asrprune.phonology.lexicon import Lexicon
from asrprune.training.lightning_module import CTCModule


def add_language(module: CTCModule, lang: str, phones: set[str]) -> CTCModule:
    """A copy of ``module`` whose token list also holds ``phones`` and whose languages include ``lang``."""
    model = module.model
    new_phones = sorted(phones - set(model.tokens))
    tokens = model.tokens + new_phones
    language_tokens = {**dict(module.hparams.language_tokens), lang: sorted(phones)}
    adapted = CTCModule(
        tokens, language_tokens, module.hparams.model, module.hparams.optim, module.hparams.max_steps,
        module.hparams.target_unit,
    )
    adapted.model.encoder.load_state_dict(model.encoder.state_dict())
    adapted.model.cmvn.load_state_dict(model.cmvn.state_dict())
    adapted.model.output_layer = model.output_layer.with_tokens(tokens)
    return adapted


def save_module(module: CTCModule, path: str | Path) -> None:
    """Save ``module`` as a checkpoint that ``CTCModule.load_from_checkpoint`` reads (weights and hyperparameters)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": L.__version__,
        },
        path,
    )


def run_cli(args: argparse.Namespace) -> None:
    module = CTCModule.load_from_checkpoint(args.checkpoint, map_location="cpu")
    if module.hparams.target_unit != "phone":
        raise ValueError(f"{args.checkpoint}: only phone models can add a language through its lexicon")
    if args.lang in module.model.languages:
        raise ValueError(f"{args.checkpoint}: the model already knows {args.lang!r} ({module.model.languages})")
    phones = Lexicon.load(args.lexicon).phones()
    adapted = add_language(module, args.lang, phones)
    save_module(adapted, args.out)
    new = len(adapted.model.tokens) - len(module.model.tokens)
    print(
        f"{args.out}: {args.lang} added with {len(phones)} phones ({new} new to the model, "
        f"output layer {module.hparams.model['output_layer'].get('type', 'flat')}); "
        f"languages {adapted.model.languages}"
    )


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "add-language",
        help="turn a trained checkpoint into one that also serves a new language (zero-shot, or to fine-tune)",
        description="Add a language the model was not trained on: its lexicon's phones join the token list and "
        "the language gets its own id. JoinAP output layers derive the new phones' embeddings from their "
        "phonological features; a flat layer keeps the rows of phones it already had and gives new phones "
        "untrained rows. Decode the result directly (zero-shot) or fine-tune it with 'asrprune train --init'.",
        epilog="example: asrprune add-language --checkpoint exp/multi/checkpoints/best.ckpt --lang pl "
        "--lexicon data/lang_pl/lexicon.txt --out exp/multi/pl_zero_shot.ckpt",
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--lang", required=True, help="language code of the new language")
    parser.add_argument("--lexicon", required=True, help="the new language's lexicon.txt")
    parser.add_argument("--out", required=True, help="checkpoint to write")
    parser.set_defaults(func=run_cli)
