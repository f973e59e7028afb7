"""The conformer CTC model (asrprune.model.conformer_ctc): shapes, per-language output restriction, CTC loss."""
from __future__ import annotations

import pytest
import torch

from asrprune.model.conformer_ctc import ConformerCTC, ctc_loss

TOKENS = ["<blank>", "<unk>", "a", "b", "e", "ʃ"]
TINY_ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1, "cnn_module_kernel": 3}


def tiny_model(**kwargs) -> ConformerCTC:
    return ConformerCTC(TOKENS, {"de": ["a", "b", "ʃ"], "fr": ["a", "e"]}, encoder=TINY_ENCODER, **kwargs)


def test_forward_shapes_and_language_restriction():
    model = tiny_model().eval()
    feats = torch.randn(2, 100, 80)
    log_probs, lengths = model(feats, torch.tensor([100, 60]), torch.tensor([0, 1]))
    assert log_probs.shape == (2, 24, len(TOKENS))  # conv2d subsampling: ((100 - 1) // 2 - 1) // 2
    # ESPnet derives lengths from the subsampled padding mask, which gives the padded utterance one more frame
    # than ((60 - 1) // 2 - 1) // 2 = 14.
    assert lengths[0] == 24 and lengths[1] in (14, 15)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 24), atol=1e-5)
    # German may not emit "e", French may not emit "b" or "ʃ"; blank is allowed for both.
    assert (log_probs[0, :, TOKENS.index("e")] < -1e3).all()
    assert (log_probs[1, :, [TOKENS.index("b"), TOKENS.index("ʃ")]] < -1e3).all()
    assert (log_probs[:, :, 0] > -100).all()


def test_unrestricted_model_lets_every_language_emit_every_phone():
    model = tiny_model(restrict_to_language_tokens=False).eval()
    log_probs, _ = model(torch.randn(1, 50, 80), torch.tensor([50]), torch.tensor([0]))
    assert (log_probs > -100).all()


def test_unknown_language_phone_is_an_error():
    with pytest.raises(ValueError, match="ɲ"):
        ConformerCTC(TOKENS, {"es": ["a", "ɲ"]}, encoder=TINY_ENCODER)


def test_ctc_loss_decreases_when_fitting_one_batch():
    torch.manual_seed(0)
    model = tiny_model()
    feats, feat_lengths = torch.randn(2, 80, 80), torch.tensor([80, 80])
    targets, target_lengths = torch.tensor([[2, 3, 5], [2, 4, -1]]), torch.tensor([3, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        log_probs, out_lengths = model(feats, feat_lengths, torch.tensor([0, 1]))
        loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
