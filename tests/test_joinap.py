"""JoinAP: phonological vectors of tokens and the JoinAP output layers (incl. swapping the token list)."""
from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np
import pytest
import torch

from asrprune.model.conformer_ctc import ConformerCTC
from asrprune.model.output_layers import FlatPhoneEmbedding, JoinAPLinear, JoinAPNonlinear, build_output_layer
from asrprune.phonology.phonological_vectors import (
    PANPHON_FEATURES,
    IdenticalVectorWarning,
    column_names,
    identical_vector_groups,
    phonological_vector,
    vector_matrix,
)
from asrprune.phonology.segments import feature_table

TOKENS = ["<blank>", "<unk>", "a", "p", "b", "ʃ"]
TINY_ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1, "cnn_module_kernel": 3}


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


def test_layer_shapes_and_parameter_counts():
    hidden = torch.randn(2, 7, 32)
    linear = JoinAPLinear(TOKENS, 32)
    assert linear.embeddings().shape == (len(TOKENS), 32)
    assert linear(hidden).shape == (2, 7, len(TOKENS))
    # the supplementary bits are on by default (55 inputs); the reference layout has 51
    assert sum(p.numel() for p in linear.parameters()) == 55 * 32 + 32
    nonlinear = JoinAPNonlinear(TOKENS, 32, hidden=16)
    assert nonlinear(hidden).shape == (2, 7, len(TOKENS))
    assert sum(p.numel() for p in nonlinear.parameters()) == (55 * 16 + 16) + (16 * 32 + 32)
    assert JoinAPNonlinear(TOKENS, 32).hidden_projection.out_features == 512
    assert JoinAPLinear(TOKENS, 32, supplementary_features=False).projection.in_features == 51
    # logits are inner products with the embeddings, no per-phone term
    torch.testing.assert_close(linear(hidden), hidden @ linear.embeddings().t())


@pytest.mark.parametrize("layer", [JoinAPLinear, JoinAPNonlinear])
def test_joinap_embeddings_start_with_the_flat_spread(layer):
    torch.manual_seed(0)
    dim = 64
    embeddings = layer(TOKENS, dim).embeddings()
    flat = FlatPhoneEmbedding(TOKENS, dim).embeddings()
    centred = embeddings - embeddings.mean(dim=0)
    assert centred.std().item() == pytest.approx(dim**-0.5, rel=1e-4)
    # the same order of magnitude as the flat layer's rows, which are drawn with std dim^-0.5
    assert flat.std().item() == pytest.approx(dim**-0.5, rel=0.2)


@pytest.mark.parametrize("kind", ["joinap_linear", "joinap_nonlinear"])
def test_shared_bias_cancels_in_log_softmax(kind):
    torch.manual_seed(0)
    layer = build_output_layer({"type": kind}, TOKENS, 32)
    last = layer.projection if kind == "joinap_linear" else layer.output_projection
    hidden = torch.randn(2, 5, 32)
    logits = layer(hidden)
    with torch.no_grad():
        last.bias += 0.7
    shifted = layer(hidden)
    assert not torch.allclose(shifted, logits)  # the logits move by h . 0.7 ...
    torch.testing.assert_close(shifted.log_softmax(-1), logits.log_softmax(-1))  # ... equally for every token


def test_vectors_are_a_buffer_not_a_parameter_nor_saved():
    layer = JoinAPNonlinear(TOKENS, 32, hidden=16)
    assert "vectors" in dict(layer.named_buffers())
    assert "vectors" not in dict(layer.named_parameters())
    assert set(layer.state_dict()) == {f"{m}.{p}" for m in ("hidden_projection", "output_projection")
                                       for p in ("weight", "bias")}
    restored = JoinAPNonlinear(TOKENS, 32, hidden=16)
    restored.load_state_dict(layer.state_dict())
    hidden = torch.randn(1, 3, 32)
    torch.testing.assert_close(restored(hidden), layer(hidden))


def test_joinap_swap_gives_new_phones_logits_from_the_trained_map():
    torch.manual_seed(0)
    trained = JoinAPLinear(TOKENS, 32)
    target = ["<blank>", "<unk>", "a", "˥", "ɕ"]
    swapped = trained.with_tokens(target)
    assert swapped.tokens == target and trained.tokens == TOKENS and trained.vectors.shape[0] == len(TOKENS)
    assert torch.equal(swapped.projection.weight, trained.projection.weight)
    assert swapped.projection.weight is not trained.projection.weight
    hidden = torch.randn(1, 4, 32)
    logits = swapped(hidden)
    assert logits.shape == (1, 4, len(target))
    weight, bias = trained.projection.weight, trained.projection.bias
    for token in ("˥", "ɕ"):  # phones the trained layer never had
        vector = torch.from_numpy(phonological_vector(token, supplementary_features=True))
        expected = hidden @ (weight @ vector + bias)
        torch.testing.assert_close(logits[..., target.index(token)], expected)
    torch.testing.assert_close(logits[..., target.index("a")], trained(hidden)[..., TOKENS.index("a")])


def test_joinap_nonlinear_swap_keeps_both_maps():
    trained = JoinAPNonlinear(TOKENS, 32, hidden=16, supplementary_features=True)
    swapped = trained.with_tokens(["<blank>", "<unk>", "ɾ"])
    assert swapped.vectors.shape == (3, 55)
    for name, value in trained.state_dict().items():
        assert torch.equal(swapped.state_dict()[name], value)


def test_flat_swap_keeps_shared_rows_and_initialises_new_ones(caplog):
    torch.manual_seed(0)
    trained = FlatPhoneEmbedding(TOKENS, 32)
    target = ["<blank>", "<unk>", "ʃ", "a", "˥", "ɕ"]
    with caplog.at_level(logging.INFO, logger="asrprune.model.output_layers"):
        swapped = trained.with_tokens(target)
    assert swapped.tokens == target and swapped.weight.shape == (6, 32)
    for token in ("<blank>", "<unk>", "ʃ", "a"):
        assert torch.equal(swapped.weight[target.index(token)], trained.weight[TOKENS.index(token)])
    for token in ("˥", "ɕ"):
        row = swapped.weight[target.index(token)]
        assert not any(torch.equal(row, old) for old in trained.weight)
    assert "kept 4 trained rows, 2 new untrained rows, dropped 2 rows" in caplog.text
    assert "˥ ɕ" in caplog.text


@pytest.mark.parametrize(
    "output_layer",
    [{"type": "joinap_linear"}, {"type": "joinap_nonlinear", "hidden": 16, "supplementary_features": True}],
)
def test_conformer_ctc_with_joinap_output(output_layer):
    torch.manual_seed(0)
    model = ConformerCTC(TOKENS, {"de": ["a", "b", "ʃ"]}, encoder=TINY_ENCODER, output_layer=output_layer)
    log_probs, lengths = model(torch.randn(2, 60, 80), torch.tensor([60, 40]), torch.tensor([0, 0]))
    assert log_probs.shape == (2, 14, len(TOKENS)) and lengths[0] == 14
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 14))
    assert (log_probs[..., TOKENS.index("p")] < -1e3).all()  # German's token mask applies as with flat
    log_probs[..., TOKENS.index("a")].sum().backward()
    first_map = next(model.output_layer.parameters())
    assert first_map.grad is not None and first_map.grad.abs().sum() > 0
    assert not any(name.endswith("vectors") for name in model.state_dict())


def test_subword_tokens_cannot_use_joinap():
    with pytest.raises(ValueError, match="▁de"):
        ConformerCTC(["<blank>", "<unk>", "▁de"], {"de": ["▁de"]}, encoder=TINY_ENCODER,
                     output_layer={"type": "joinap_linear"})
