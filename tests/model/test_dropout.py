"""The conformer's CPU dropout (asrprune/model/dropout.py): the same Bernoulli keep-mask and scaling as nn.Dropout."""
import pytest
import torch
from torch import nn

from asrprune.model.conformer_ctc import ConformerCTC
from asrprune.model.dropout import UniformMaskDropout, use_uniform_mask_dropout


def test_keeps_each_element_with_probability_one_minus_p_and_scales_the_kept():
    torch.manual_seed(0)
    x = torch.ones(200, 500)
    y = UniformMaskDropout(0.1).train()(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.9, abs=0.005)  # 100k draws: 5 sigma is 0.0047
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))


def test_gradient_flows_only_through_kept_elements_with_the_same_scale():
    torch.manual_seed(1)
    x = torch.randn(64, 64, requires_grad=True)
    y = UniformMaskDropout(0.3).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)
    assert torch.allclose(x.grad[y != 0], torch.full_like(x.grad[y != 0], 1 / 0.7))


def test_eval_mode_bf16_and_seeded_runs():
    drop = UniformMaskDropout(0.5)
    x = torch.randn(8, 16)
    assert torch.equal(drop.eval()(x), x)
    drop.train()
    assert drop(x.bfloat16()).dtype == torch.bfloat16
    torch.manual_seed(3)
    first = drop(x)
    torch.manual_seed(3)
    assert torch.equal(first, drop(x))


def test_the_conformer_uses_it_for_every_dropout_and_its_state_dict_is_unchanged():
    tokens = ["<blank>", "a", "b"]
    model = ConformerCTC(tokens, {"de": tokens[1:]}, 80, {"num_blocks": 2, "output_size": 32, "linear_units": 64})
    dropouts = [m for m in model.encoder.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(type(m) is UniformMaskDropout for m in dropouts)
    plain = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2))
    before = plain.state_dict()
    assert use_uniform_mask_dropout(plain) == 1 and plain.state_dict().keys() == before.keys()
