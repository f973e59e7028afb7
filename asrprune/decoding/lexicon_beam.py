"""Lexicon-constrained CTC beam search over phone emissions, with an optional word n-gram LM.

Wraps :func:`torchaudio.models.decoder.ctc_decoder` (flashlight-text's ``LexiconDecoder``): hypotheses walk a
trie of the lexicon's pronunciations, so only lexicon words come out, and a KenLM-readable ARPA model (see
:mod:`asrprune.decoding.ngram_lm`) can score the word sequence.

Word boundaries. flashlight needs a silence token that is in the token list; asrprune's phone models have none,
and words follow each other with nothing in between. In flashlight's CTC lexicon search a word ends when its
last phone is emitted and the hypothesis returns to the trie root; from the root the next frame may start the
next word directly, emit blank, or emit the silence token (staying at the root). So silence is never required
between words, only allowed. We append a silence column to the emissions whose log-probability is
``_SILENCE_LOG_PROB`` (far below any real score), which makes the silence option lose every comparison: the search
is then exactly a CTC search over the concatenation of lexicon pronunciations. (Reusing blank as the silence
token also decodes correctly, but every hypothesis at the root then exists twice per frame, once after "blank" and
once after "silence", and the copies crowd the beam.) tests/decoding/test_decoding.py checks words decoded back to back.
flashlight puts the silence token at the start and end of every token path; :class:`Hypothesis` phones leave it
out.

Homophones. flashlight breaks exact score ties by memory address, so when two words share a pronunciation and
nothing else tells them apart, the word it prints changes from run to run (and utterance to utterance; observed).
Without an LM nothing can tell homophones apart, and with an LM words outside its vocabulary all score as
``<unk>``; so per pronunciation we keep every word the LM knows plus one representative (the first in lexicon
order) of the rest, and record the others in :attr:`LexiconBeamDecoder.merged_homophones`. Homophones the LM knows
are chosen by their LM context. (Two known homophones with exactly equal LM scores in some context, e.g. both seen
once and backed off to the unigram, can still tie; flashlight offers no per-word tie-break.)

Segmentation ties. One phone string can also split into the same number of different words ("ca pas" / "cap a",
"pape eu" / "pas pu": same phones, same word count, so the same score without an LM), and flashlight breaks those by
memory address as well: the mini recipe's French WER differed by 0.6 points between two decodings of one model in
one run, on 3 of 100 utterances, all such ties, with identical greedy phones. So the search asks flashlight for at
least :data:`_TIE_CANDIDATES` hypotheses and, among those within :data:`_TIE_TOLERANCE` of the best score, puts the
alphabetically first word sequence first (:func:`_break_ties`).

Known remaining variation, not traced into flashlight: on some utterances its search itself ends on a different,
worse hypothesis in some runs (mini recipe model, French test utterance ``common_voice_fr_23880150``: "assez jeune
dans près" (score -24.80) in 19 of 30 decodings of the same emissions, "assez jeune dans vêtements" (-29.67) in the
others, in one interactive check with no committed script; not changed by the silence column's value, the beam
threshold or the n-best size, and beam sizes 20 / 100 end deterministically on other, worse hypotheses). So a WER
may move by a word or two between decodings.

LM scores from KenLM are log10, acoustic scores natural log: ``lm_weight`` absorbs the factor.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torchaudio.models.decoder import ctc_decoder

from asrprune.decoding.ngram_lm import arpa_vocabulary

logger = logging.getLogger(__name__)

_SILENCE_TOKEN = "<word-boundary-never-emitted>"
_SILENCE_LOG_PROB = -1.0e9
_UNKNOWN_WORD = "<unk>"  # flashlight's word for "not in the lexicon"; never produced because unk_score is -inf
# Hypotheses requested from flashlight, at least, so that tied best hypotheses are all seen (segmentation ties).
_TIE_CANDIDATES = 4
# Scores (natural log) closer than this to the best count as tied: the same sums taken in another order differ in
# the last float32 bits only.
_TIE_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """One decoded utterance: lexicon ``words``, the ``phones`` of the best path (repeats merged, blanks
    removed) and the total ``score`` (acoustic natural-log score + ``lm_weight`` * log10 LM score + word scores)."""

    words: list[str]
    phones: list[str]
    score: float


class LexiconBeamDecoder:
    """CTC beam search restricted to the words of a pronunciation lexicon.

    Args:
        tokens: the acoustic model's output symbols, index ``i`` naming emission column ``i`` (``<blank>``,
            ``<unk>``, IPA phones, ...). No entry may contain whitespace.
        lexicon: ``word -> phones``; one pronunciation per word. Words with a phone that is not in ``tokens`` (or
            is the blank) cannot be decoded: they are left out, listed in :attr:`skipped_words` (word -> the
            unusable phones) and reported with a logged warning. Homophones the LM cannot tell apart are decoded as
            the first of them in lexicon order; :attr:`merged_homophones` maps each other one to that word.
        lm_path: ARPA word LM (e.g. from :func:`asrprune.decoding.ngram_lm.train_arpa`), or ``None`` for no LM.
        beam_size: hypotheses kept after each frame.
        lm_weight: weight of the log10 LM score.
        word_score: score added per emitted word (positive favours more, shorter words).
        beam_threshold: hypotheses scoring more than this below the frame's best are pruned.
        nbest: hypotheses returned per utterance by :meth:`decode_nbest` (flashlight is asked for at least
            :data:`_TIE_CANDIDATES`, to break ties between the best ones deterministically).
        blank: index of the CTC blank in ``tokens``.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        lexicon: Mapping[str, Sequence[str]],
        *,
        lm_path: str | Path | None = None,
        beam_size: int = 50,
        lm_weight: float = 2.0,
        word_score: float = 0.0,
        beam_threshold: float = 50.0,
        nbest: int = 1,
        blank: int = 0,
    ):
        self.tokens = list(tokens)
        self.nbest = nbest
        _check_tokens(self.tokens, blank)
        if lm_path is not None and not Path(lm_path).is_file():
            raise FileNotFoundError(f"language model {lm_path}: no such file")
        usable, self.skipped_words = _split_lexicon(lexicon, set(self.tokens) - {self.tokens[blank]})
        if self.skipped_words:
            examples = ", ".join(
                f"{word} ({' '.join(phones)})" for word, phones in list(self.skipped_words.items())[:5]
            )
            logger.warning(
                "lexicon: skipped %d of %d words with phones not in the token list, e.g. %s",
                len(self.skipped_words), len(lexicon), examples,
            )
        if not usable:
            raise ValueError(f"lexicon: none of its {len(lexicon)} words can be spelled with the token list")
        lm_words = set() if lm_path is None else arpa_vocabulary(lm_path)
        usable, self.merged_homophones = _merge_indistinguishable_homophones(usable, lm_words)
        if self.merged_homophones:
            logger.info(
                "lexicon: %d homophones the %s cannot tell apart are output as their first spelling",
                len(self.merged_homophones), "LM" if lm_path else "decoder without LM",
            )
        with tempfile.TemporaryDirectory(prefix="asrprune_lexicon_") as tmp:
            lexicon_file = Path(tmp) / "lexicon.txt"
            lexicon_file.write_text(
                "".join(f"{word} {' '.join(phones)}\n" for word, phones in usable.items()), encoding="utf-8"
            )
            self._decoder = ctc_decoder(
                lexicon=str(lexicon_file),
                tokens=self.tokens + [_SILENCE_TOKEN],
                lm=None if lm_path is None else str(lm_path),
                nbest=max(nbest, _TIE_CANDIDATES),
                beam_size=beam_size,
                beam_threshold=beam_threshold,
                lm_weight=lm_weight,
                word_score=word_score,
                blank_token=self.tokens[blank],
                sil_token=_SILENCE_TOKEN,
                unk_word=_UNKNOWN_WORD,
            )

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        """Best hypothesis per utterance; arguments as for :meth:`decode_nbest`."""
        return [nbest[0] for nbest in self.decode_nbest(log_probs, lengths)]

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """Decode a padded batch.

        Args:
            log_probs: ``(B, T, V)`` CTC log-probabilities, ``V == len(tokens)`` (moved to float32 CPU).
            lengths: ``(B,)`` valid frames per utterance.

        Returns:
            per utterance, 1 to ``nbest`` hypotheses, best first; when no word fits the frames (or there are none)
            flashlight returns the empty hypothesis.
        """
        if log_probs.ndim != 3 or log_probs.shape[-1] != len(self.tokens):
            raise ValueError(
                f"log_probs must have shape (B, T, {len(self.tokens)}), got {tuple(log_probs.shape)}"
            )
        batch, frames, _ = log_probs.shape
        lengths = lengths.detach().cpu().long()
        if lengths.shape != (batch,) or bool((lengths < 0).any()) or bool((lengths > frames).any()):
            raise ValueError(f"lengths must be {batch} frame counts in [0, {frames}], got {lengths.tolist()}")
        emissions = log_probs.detach().to(device="cpu", dtype=torch.float32)
        silence = emissions.new_full((batch, frames, 1), _SILENCE_LOG_PROB)
        emissions = torch.cat([emissions, silence], dim=-1).contiguous()
        silence_index = len(self.tokens)
        return [
            _break_ties([
                Hypothesis(
                    words=list(hypothesis.words),
                    phones=[self.tokens[i] for i in hypothesis.tokens.tolist() if i != silence_index],
                    score=float(hypothesis.score),
                )
                for hypothesis in found
            ])[: self.nbest]
            for found in self._decoder(emissions, lengths)
        ]


def _break_ties(hypotheses: list[Hypothesis]) -> list[Hypothesis]:
    """``hypotheses`` (best first, as flashlight returns them) with those tied with the best (within
    :data:`_TIE_TOLERANCE`) first, in alphabetical order of their word sequences, then the rest as given."""
    if not hypotheses:
        return hypotheses
    best = max(h.score for h in hypotheses)
    tied = [h for h in hypotheses if best - h.score <= _TIE_TOLERANCE]
    rest = [h for h in hypotheses if best - h.score > _TIE_TOLERANCE]
    return sorted(tied, key=lambda h: h.words) + rest


def _check_tokens(tokens: list[str], blank: int) -> None:
    """Raise ``ValueError`` unless ``tokens`` are unique, non-empty, whitespace-free and ``blank`` indexes one."""
    if not 0 <= blank < len(tokens):
        raise ValueError(f"blank index {blank} is outside the token list of {len(tokens)}")
    for index, token in enumerate(tokens):
        if not token or any(ch.isspace() for ch in token):
            raise ValueError(f"token {index} ({token!r}) is empty or contains whitespace")
    repeated = sorted({token for token in tokens if tokens.count(token) > 1})
    if repeated:
        raise ValueError(f"tokens occur more than once: {repeated}")
    if _SILENCE_TOKEN in tokens:
        raise ValueError(f"token list may not contain the decoder's internal silence token {_SILENCE_TOKEN!r}")


def _split_lexicon(
    lexicon: Mapping[str, Sequence[str]], spellable: set[str]
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Split ``lexicon`` into words spellable with ``spellable`` phones and skipped words -> their unusable phones.

    An empty pronunciation makes a word unusable too (skipped with no phones listed). Raises ``ValueError`` for a
    word that flashlight's whitespace-separated lexicon file cannot hold and ``TypeError`` for a pronunciation
    given as one string (ambiguous: ``"ts"`` could be one phone or two).
    """
    usable: dict[str, tuple[str, ...]] = {}
    skipped: dict[str, tuple[str, ...]] = {}
    for word, phones in lexicon.items():
        if not word or any(ch.isspace() for ch in word):
            raise ValueError(f"lexicon word {word!r} is empty or contains whitespace")
        if isinstance(phones, str):
            raise TypeError(f"lexicon word {word!r}: pronunciation must be a sequence of phones, not {phones!r}")
        unusable = tuple(phone for phone in phones if phone not in spellable)
        if unusable or not phones:
            skipped[word] = unusable
        else:
            usable[word] = tuple(phones)
    return usable, skipped


def _merge_indistinguishable_homophones(
    lexicon: dict[str, tuple[str, ...]], lm_words: set[str]
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Drop every word that is not in ``lm_words`` and shares its pronunciation with an earlier such word.

    Returns the remaining lexicon (order kept) and ``dropped word -> the earlier word that now stands for it``.
    """
    kept: dict[str, tuple[str, ...]] = {}
    merged: dict[str, str] = {}
    representative: dict[tuple[str, ...], str] = {}
    for word, phones in lexicon.items():
        if word in lm_words:
            kept[word] = phones
            continue
        first = representative.setdefault(phones, word)
        if first == word:
            kept[word] = phones
        else:
            merged[word] = first
    return kept, merged
