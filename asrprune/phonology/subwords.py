"""Optional character / subword targets (instead of phones) with sentencepiece, ESPnet-style.

The model's piece ids are the CTC output ids directly: ``<blank>`` is id 0 (sentencepiece's padding piece,
renamed) and ``<unk>`` is id 1, as in ESPnet token lists; there are no BOS/EOS pieces. Word boundaries are the
pieces' ``▁`` prefix, as usual for sentencepiece.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece

from asrprune.phonology.inventory import BLANK, UNK

MODEL_TYPES = ("unigram", "bpe", "char")
WORD_START = "\u2581"  # sentencepiece's word-start mark ▁


def train_sentencepiece(
    texts: Iterable[str], model_prefix: Path, vocab_size: int, model_type: str = "unigram"
) -> Path:
    """Train a sentencepiece model on ``texts`` (normalised transcripts, one utterance each).

    Writes ``<model_prefix>.model`` and ``<model_prefix>.vocab`` and returns the ``.model`` path.
    ``vocab_size`` counts all pieces including ``<blank>`` and ``<unk>``; for ``model_type="char"`` it is an
    upper bound (the most frequent characters are kept). Otherwise every character of the training text is
    covered (``character_coverage=1.0``).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    model_prefix = Path(model_prefix)
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(model_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        pad_id=0,
        pad_piece=BLANK,
        unk_id=1,
        unk_piece=UNK,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    return model_prefix.with_name(model_prefix.name + ".model")


class SubwordTokenizer:
    """Text <-> pieces with a model written by :func:`train_sentencepiece`."""

    def __init__(self, model_path: str | Path):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path}: no sentencepiece model")
        self._processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))

    @property
    def pieces(self) -> list[str]:
        """All pieces in id order (``<blank>``, ``<unk>``, ...): the CTC token list."""
        return [self._processor.id_to_piece(i) for i in range(self._processor.get_piece_size())]

    def encode(self, text: str) -> list[str]:
        """The pieces of ``text``; a span the model cannot cover becomes ``<unk>``."""
        return [self._processor.id_to_piece(piece_id) for piece_id in self._processor.encode(text)]

    def decode(self, pieces: Sequence[str]) -> str:
        """The text of ``pieces`` (inverse of :meth:`encode` for text made of known characters)."""
        return self._processor.decode(list(pieces))


def pieces_to_text(pieces: Sequence[str]) -> str:
    """Text of decoded pieces without the model: ``▁`` starts a word (sentencepiece's convention)."""
    return "".join(pieces).replace(WORD_START, " ").strip()
