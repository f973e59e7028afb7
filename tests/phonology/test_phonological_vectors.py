"""Phonological vectors of tokens (asrprune.phonology.phonological_vectors), the inputs of JoinAP's output layers:
panphon's features in the reference's 2-bit code, special tokens, unknown symbols, the supplementary features."""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest
import torch

from asrprune.phonology.phonological_vectors import (
    PANPHON_FEATURES,
    IdenticalVectorWarning,
    column_names,
    identical_vector_groups,
    phonological_vector,
    vector_matrix,
)
from asrprune.phonology.segments import feature_table


def feature_signs(plus: str, zero: str) -> str:
    """The +/-/0 string in PANPHON_FEATURES order: features in ``plus`` are +, in ``zero`` 0, all others -."""
    return "".join("+" if name in plus.split() else "0" if name in zero.split() else "-" for name in PANPHON_FEATURES)


# Hand-written feature values (checked against panphon in the test that uses them).
EXPECTED_FEATURES = {
    "p": feature_signs(plus="cons ant lab", zero="distr tense hitone hireg"),
    "a": feature_signs(plus="syl son cont voi lo back tense", zero="ant distr hitone hireg"),
    "˥": feature_signs(plus="hitone hireg", zero=" ".join(PANPHON_FEATURES[:22])),
}
TWO_BIT = {"+": (1.0, 0.0), "-": (0.0, 1.0), "0": (0.0, 0.0)}


def column(feature: str, sign: str) -> int:
    return column_names().index(feature + sign)


def test_layout_matches_panphon_and_the_reference():
    assert PANPHON_FEATURES == tuple(feature_table().names)
    names = column_names()
    assert len(names) == 51
    assert names[:4] == ["syl+", "syl-", "son+", "son-"] and names[46:] == ["hireg+", "hireg-", "blank", "unk", "noise"]
    assert column_names(supplementary_features=True)[51:] == ["tap", "central", "open_mid", "palatalised"]


@pytest.mark.parametrize("phone", sorted(EXPECTED_FEATURES))
def test_two_bit_code_of_hand_written_features(phone):
    signs = EXPECTED_FEATURES[phone]
    assert signs == "".join(feature_table().fts(phone).strings())  # the expectation agrees with panphon
    expected = np.array([bit for sign in signs for bit in TWO_BIT[sign]] + [0, 0, 0], dtype=np.float32)
    vector = phonological_vector(phone)
    assert vector.dtype == np.float32 and vector.shape == (51,)
    np.testing.assert_array_equal(vector, expected)


def test_tone_letter_has_only_its_tone_bits():
    vector = phonological_vector("˥")
    assert np.flatnonzero(vector).tolist() == [column("hitone", "+"), column("hireg", "+")] == [44, 46]
    low = phonological_vector("˩")
    assert np.flatnonzero(low).tolist() == [column("hitone", "-"), column("hireg", "-")]


def test_minimal_pairs_differ_only_in_their_feature():
    def differing(x, y):
        return np.flatnonzero(phonological_vector(x) != phonological_vector(y)).tolist()

    assert differing("p", "b") == [column("voi", "+"), column("voi", "-")] == [16, 17]
    assert phonological_vector("p")[16:18].tolist() == [0, 1] and phonological_vector("b")[16:18].tolist() == [1, 0]
    assert differing("a", "aː") == [column("long", "+"), column("long", "-")]
    assert phonological_vector("aː")[column("long", "+")] == 1
    assert differing("ɔ", "ɔ̃") == [column("nas", "+"), column("nas", "-")]
    assert phonological_vector("ɔ̃")[column("nas", "+")] == 1


def test_lookup_normalises_to_nfd():
    composed = "ã"  # U+00E3
    assert unicodedata.normalize("NFD", composed) != composed
    np.testing.assert_array_equal(phonological_vector(composed), phonological_vector("a\u0303"))
    assert phonological_vector(composed)[column("nas", "+")] == 1


def test_special_tokens_have_one_bit_each():
    matrix = vector_matrix(["<blank>", "<unk>", "a"])
    assert matrix.dtype == torch.float32 and matrix.shape == (3, 51)
    assert torch.nonzero(matrix[0]).flatten().tolist() == [48]
    assert torch.nonzero(matrix[1]).flatten().tolist() == [49]
    assert matrix[:, 50].sum() == 0 and matrix[2, 48:].sum() == 0


@pytest.mark.parametrize(
    "token, points", [("5", "U+0035"), ("tʃ", "U+0074 U+0283"), ("▁ab", "U+2581 U+0061 U+0062")]
)
def test_token_without_features_raises_naming_it(token, points):
    with pytest.raises(ValueError, match=re.escape(points)) as error:
        phonological_vector(token)
    assert repr(token) in str(error.value)
    with pytest.raises(ValueError, match=re.escape(points)):
        vector_matrix(["<blank>", "<unk>", "a", token])


def test_identical_vector_groups_and_the_supplementary_remedy():
    tokens = ["<blank>", "<unk>", "r", "a", "ɾ", "e", "ɐ", "k", "kʲ", "ə", "ɜ", "ɛ"]
    assert identical_vector_groups(tokens) == [["r", "ɾ"], ["e", "ɐ"], ["k", "kʲ"], ["ə", "ɜ"]]
    assert identical_vector_groups(tokens, supplementary_features=True) == []
    with pytest.warns(IdenticalVectorWarning, match="ɾ"):
        vector_matrix(tokens)
    remedied = vector_matrix(tokens, supplementary_features=True)
    assert remedied.shape == (len(tokens), 55)
    names = column_names(supplementary_features=True)
    extra = {token: [names[51 + i] for i in np.flatnonzero(row[51:].numpy())] for token, row in zip(tokens, remedied)}
    assert extra == {
        "<blank>": [], "<unk>": [], "r": [], "a": [], "ɾ": ["tap"], "e": [], "ɐ": ["central"], "k": [],
        "kʲ": ["palatalised"], "ə": ["central"], "ɜ": ["central", "open_mid"], "ɛ": ["open_mid"],
    }  # fmt: skip


def test_remedy_keeps_the_reference_columns_and_a_fixed_width():
    for tokens in (["<blank>", "<unk>", "a", "ɾ"], ["<blank>", "<unk>", "˥", "ɕ", "ʈ", "ɻ̩", "kʲ"]):
        reference = np.stack([phonological_vector(token) for token in tokens])
        remedied = np.stack([phonological_vector(token, supplementary_features=True) for token in tokens])
        assert remedied.shape == (len(tokens), 55)
        np.testing.assert_array_equal(remedied[:, :51], reference)
