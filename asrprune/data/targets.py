"""What the CTC model learns to emit: IPA phones (the default) or sentencepiece subword pieces.

``load_target_units`` reads either a phone inventory (``phones.txt``, from ``asrprune make-inventory``) or a
sentencepiece model (``*.model``, from ``asrprune make-subwords``); both give the CTC token list (``<blank>`` first)
and the token ids of an utterance: its ``phones`` transcript, or the pieces of its ``text``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from asrprune.cli_options import add_out
from asrprune.data.kaldi_dir import Utterance, read_data_dir
from asrprune.phonology.inventory import PhoneInventory
from asrprune.phonology.subwords import MODEL_TYPES, SubwordTokenizer, train_sentencepiece

PHONE = "phone"
SUBWORD = "subword"


class TargetUnits:
    """Token list and utterance -> units mapping for one kind of target (``PHONE`` or ``SUBWORD``)."""

    def __init__(self, kind: str, tokens: Sequence[str], tokenizer: SubwordTokenizer | None = None):
        self.kind = kind
        self.tokens = list(tokens)
        self._tokenizer = tokenizer
        self._index = {token: i for i, token in enumerate(self.tokens)}

    def units(self, utt: Utterance) -> Sequence[str]:
        """The target tokens of ``utt``: its phones, or the pieces of its text."""
        return utt.phones if self.kind == PHONE else self._tokenizer.encode(utt.text)

    def encode(self, utt: Utterance) -> list[int]:
        """Token ids of ``utt``; a phone outside the token list raises KeyError naming it and the utterance."""
        try:
            return [self._index[unit] for unit in self.units(utt)]
        except KeyError as err:
            raise KeyError(f"utterance {utt.uttid}: {self.kind} {err} is not in the token list") from None


def load_target_units(path: str | Path) -> TargetUnits:
    """Phone inventory (any file but ``*.model``) or sentencepiece model (``*.model``)."""
    path = Path(path)
    if path.suffix == ".model":
        tokenizer = SubwordTokenizer(path)
        return TargetUnits(SUBWORD, tokenizer.pieces, tokenizer)
    return TargetUnits(PHONE, PhoneInventory.load(path).tokens)


def run_cli(args: argparse.Namespace) -> None:
    texts = [utt.text for directory in args.data for utt in read_data_dir(directory)]
    model = train_sentencepiece(texts, Path(args.out), args.vocab_size, args.model_type)
    print(f"{model}: {len(SubwordTokenizer(model).pieces)} pieces ({args.model_type}) from {len(texts)} transcripts")


def register_cli(subparsers) -> None:
    """Add the ``make-subwords`` sub-command."""
    parser = subparsers.add_parser(
        "make-subwords",
        description="Train sentencepiece on the transcripts (text files) of data directories. Pass the resulting "
        "OUT.model to 'asrprune train --tokens' to train on subword pieces of the text instead of phones; "
        "decoding is then greedy and scored as WER (CER for zh). <blank> is id 0, <unk> id 1.",
        epilog="example: asrprune make-subwords --data data/train_de data/train_fr --model-type bpe "
        "--vocab-size 300 --out data/bpe300",
    )
    parser.add_argument("--data", nargs="+", required=True, help="data directories whose text to learn from")
    parser.add_argument("--model-type", choices=MODEL_TYPES, default="bpe")
    parser.add_argument("--vocab-size", type=int, default=300, help="pieces including <blank> and <unk>")
    add_out(parser, "model prefix: writes OUT.model and OUT.vocab")
    parser.set_defaults(func=run_cli)
