"""Phonological vectors of output tokens for JoinAP output layers (Zhu et al., ASRU 2021, arXiv 2107.05038).

Reference layout (51 columns, as CAT's ``get_ipa_mapping.py``):

- columns ``[2k, 2k + 1]`` hold panphon feature k of :data:`PANPHON_FEATURES` (the column order of panphon's
  ``ipa_all.csv``, checked at import) in a 2-bit code: ``+`` -> (1, 0), ``-`` -> (0, 1), ``0`` -> (0, 0);
- column 48 is the blank bit (``<blank>`` has only this bit), 49 the unknown bit (``<unk>`` has only this one),
  50 the noise bit (spoken/natural noise; no asrprune token uses it, the column is kept so that the width and the
  column meanings match the reference's 51 dims).

Tokens are looked up in NFD form (panphon's own normalisation). A token that is not a single panphon segment
raises ``ValueError`` naming it and its code points: CAT skips such symbols, which silently shifts every later
row against the token list, and an all-zero row would merge the symbol with every other unknown one.

Identical vectors. panphon 0.22.2 gives some different phones identical rows, so a JoinAP layer built on the
reference layout cannot tell them apart (their logits are equal at every frame). Measured on the espeak-ng
lexicon phones (:func:`asrprune.phonology.g2p.words_to_phones`) of the 20,000 most frequent ``wordfreq`` words of
each language (Han words only for zh):

- de: ``e``/``ɐ``, ``r``/``ɾ``, ``ə``/``ɜ``;  fr: ``e``/``ɐ``;  es: ``r``/``ɾ``;  it: ``r``/``ɾ``, ``əː``/``ɜː``;
- pl: ``k``/``kʲ``, ``ɡ``/``ɡʲ``, ``ɲ``/``ɲʲ`` (palatalisation is only coded by ``hi``, which velars and
  palatals already have);  zh: none.

Among panphon's single-character segments the only identical rows are exactly ``r``/``ɾ``, ``e``/``ɐ`` and
``ə``/``ɜ``; the rest come from the ``ʲ`` diacritic on ``hi+`` consonants.

Remedy (option ``supplementary_features=True``): :data:`SUPPLEMENTARY_FEATURES` appends four named binary
features that panphon does not encode (tap vs trill, central vowel, open-mid vowel, secondary palatalisation),
one column each after the 51 reference columns. Each is read off the IPA symbol itself, never off the inventory,
so a phone has the same 55-dim vector in every language's inventory and a trained projection A still applies
when the inventory is swapped for another language's. This separates every collision listed above. A token
merge was rejected: it would change the CTC targets and lose distinctions the lexicons make (Spanish ``r`` vs
``ɾ`` is phonemic). The default stays the reference layout so that results compare with the paper; any
identical rows it leaves are reported with an :class:`IdenticalVectorWarning`.
"""
from __future__ import annotations

import unicodedata
import warnings
from collections import defaultdict
from importlib.resources import files
from typing import Sequence

import numpy as np
import torch
from panphon.featuretable import feature_sets

from asrprune.phonology.inventory import BLANK, UNK
from asrprune.phonology.segments import feature_table

PANPHON_FEATURES = (
    "syl", "son", "cons", "cont", "delrel", "lat", "nas", "strid", "voi", "sg", "cg", "ant",
    "cor", "distr", "lab", "hi", "lo", "back", "round", "velaric", "tense", "long", "hitone", "hireg",
)  # fmt: skip
BLANK_COLUMN = 2 * len(PANPHON_FEATURES)  # 48
UNK_COLUMN = BLANK_COLUMN + 1  # 49
NOISE_COLUMN = BLANK_COLUMN + 2  # 50: reserved for a noise token, as in the reference
REFERENCE_WIDTH = BLANK_COLUMN + 3  # 51

# Named binary features panphon 0.22.2 lacks, each set when the token contains one of its characters (after NFD).
# Column REFERENCE_WIDTH + i holds feature i.
SUPPLEMENTARY_FEATURES: dict[str, frozenset[str]] = {
    "tap": frozenset("ɾɽⱱɺ"),  # panphon codes taps and trills alike (r = ɾ)
    "central": frozenset("ɨʉɘɵəɜɞɐɚɝ"),  # panphon gives ɐ the row of e
    "open_mid": frozenset("ɛœɜɞʌɔɝ"),  # panphon gives ɜ the row of ə
    "palatalised": frozenset("ʲ"),  # panphon's only palatalisation cue is hi+, which k ɡ ɲ already have
}
SPECIAL_COLUMNS = {BLANK: BLANK_COLUMN, UNK: UNK_COLUMN}


class IdenticalVectorWarning(UserWarning):
    """Distinct tokens got identical phonological vectors, so a pure JoinAP layer cannot separate them."""


def _check_panphon_feature_order() -> None:
    """Fail at import if panphon's feature table does not have the reference's 24 features in order.

    Reads the header of the very file ``panphon.FeatureTable`` loads (loading the table itself takes a second).
    """
    with files("panphon").joinpath(feature_sets["spe+"][0]).open(encoding="utf-8") as table:
        names = tuple(table.readline().strip().split(",")[1:])
    if names != PANPHON_FEATURES:
        raise RuntimeError(
            f"panphon's ipa_all.csv has features {names}; the JoinAP layout expects {PANPHON_FEATURES}"
        )


_check_panphon_feature_order()


def column_names(supplementary_features: bool = False) -> list[str]:
    """Name of each vector column (``syl+``, ``syl-``, ..., ``blank``, ``unk``, ``noise`` [, supplementary])."""
    names = [f"{feature}{sign}" for feature in PANPHON_FEATURES for sign in "+-"]
    names += ["blank", "unk", "noise"]
    if supplementary_features:
        names += list(SUPPLEMENTARY_FEATURES)
    return names


def phonological_vector(token: str, supplementary_features: bool = False) -> np.ndarray:
    """The 0/1 vector of ``token``: float32 (51,), or (55,) with ``supplementary_features``.

    ``token`` is ``<blank>``, ``<unk>`` or one panphon segment (any Unicode normalisation form).
    Raises ``ValueError`` naming the token and its code points if panphon does not know it as one segment.
    """
    vector = np.zeros(len(column_names(supplementary_features)), dtype=np.float32)
    if token in SPECIAL_COLUMNS:
        vector[SPECIAL_COLUMNS[token]] = 1.0
        return vector
    segment = unicodedata.normalize("NFD", token)
    table = feature_table()
    if not table.seg_known(segment, normalize=False):
        points = " ".join(f"U+{ord(ch):04X}" for ch in segment)
        raise ValueError(
            f"token {token!r} ({points}) is not a single panphon segment, so it has no phonological vector; "
            "JoinAP output layers need one for every token (subword tokens cannot use them)"
        )
    # Segment.numeric(names) honours the given order (Segment.strings ignores it in panphon 0.22.2).
    values = np.array(table.fts(segment, normalize=False).numeric(list(PANPHON_FEATURES)))
    vector[0:BLANK_COLUMN:2] = values == 1
    vector[1:BLANK_COLUMN:2] = values == -1
    if supplementary_features:
        for offset, characters in enumerate(SUPPLEMENTARY_FEATURES.values()):
            vector[REFERENCE_WIDTH + offset] = any(ch in characters for ch in segment)
    return vector


def identical_vector_groups(tokens: Sequence[str], supplementary_features: bool = False) -> list[list[str]]:
    """Groups (two or more tokens each, in token order) of ``tokens`` whose vectors are identical."""
    rows = [phonological_vector(token, supplementary_features) for token in tokens]
    return _groups_of_equal_rows(tokens, rows)


def vector_matrix(tokens: Sequence[str], supplementary_features: bool = False) -> torch.Tensor:
    """Float32 (V, 51) (or (V, 55) with ``supplementary_features``): row v is the vector of ``tokens[v]``.

    Issues an :class:`IdenticalVectorWarning` listing the tokens that share a row.
    """
    rows = [phonological_vector(token, supplementary_features) for token in tokens]
    collisions = _groups_of_equal_rows(tokens, rows)
    if collisions:
        hint = "" if supplementary_features else "; supplementary_features=True separates the known cases"
        warnings.warn(
            f"{len(collisions)} groups of tokens share a phonological vector and will get identical JoinAP "
            f"logits: {collisions}{hint}",
            IdenticalVectorWarning,
            stacklevel=2,
        )
    return torch.from_numpy(np.stack(rows))


def _groups_of_equal_rows(tokens: Sequence[str], rows: Sequence[np.ndarray]) -> list[list[str]]:
    groups: dict[bytes, list[str]] = defaultdict(list)
    for token, row in zip(tokens, rows):
        groups[row.tobytes()].append(token)
    return [group for group in groups.values() if len(group) > 1]
