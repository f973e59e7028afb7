"""The output layers (asrprune.model.output_layers): flat and JoinAP (embeddings from phonological vectors), incl.
swapping the token list."""
from __future__ import annotations

import logging

import pytest
import torch

from asrprune.model.conformer_ctc import ConformerCTC
from asrprune.model.output_layers import FlatPhoneEmbedding, JoinAPLinear, JoinAPNonlinear, build_output_layer
from asrprune.phonology.phonological_vectors import phonological_vector

TOKENS = ["<blank>", "<unk>", "a", "p", "b", "ʃ"]
TINY_ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1, "cnn_module_kernel": 3}


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
