"""Reconstruction modes of AutoDFP pruning: ``none``, ``fold`` and the least-squares refit ``lstsq``, and the default
mix ``lstsq,conv=none`` (tiny models)."""
from __future__ import annotations

import pytest
import torch

from asrprune.model.conformer_layout import KINDS, encoder_layers
from asrprune.pruning.autodfp.distortion import OutputDistortion, synthetic_features
from asrprune.pruning.autodfp.prune import LayerPlan, prune_module
from asrprune.pruning.autodfp.reconstruction import least_squares, modes_text, reconstruction_modes
from tests.helpers.tiny_experiment import two_block_module
from tests.pruning.autodfp.test_prune import _unit_view, outputs, plan_without_one


def test_mode_strings_parse_per_kind_and_reject_unknowns():
    assert reconstruction_modes(None) == {"subsampling": "lstsq", "ffn": "lstsq", "heads": "lstsq", "conv": "none"}
    heads_folded = reconstruction_modes("heads=fold")
    assert heads_folded["heads"] == "fold" and heads_folded["ffn"] == "lstsq"
    assert reconstruction_modes("lstsq") == {kind: "lstsq" for kind in KINDS}
    modes = reconstruction_modes("none, ffn=lstsq,conv=lstsq")
    assert modes == {"subsampling": "none", "ffn": "lstsq", "heads": "none", "conv": "lstsq"}
    assert reconstruction_modes(modes_text(modes)) == modes and modes_text(reconstruction_modes("fold")) == "fold"
    assert reconstruction_modes({"heads": "none"})["heads"] == "none"
    with pytest.raises(ValueError, match="mode 'merge'"):
        reconstruction_modes("merge")
    with pytest.raises(ValueError, match="unit kind 'mlp'"):
        reconstruction_modes("mlp=lstsq")


def test_least_squares_recovers_an_exact_affine_combination():
    g = torch.Generator().manual_seed(0)
    kept = torch.randn(500, 6, generator=g, dtype=torch.float64)
    pruned = kept @ torch.randn(6, 2, generator=g, dtype=torch.float64) + torch.tensor([0.5, -2.0],
                                                                                          dtype=torch.float64)
    coef = least_squares(kept, pruned)
    torch.testing.assert_close(torch.cat([kept, torch.ones(500, 1, dtype=torch.float64)], 1) @ coef, pruned)


def _uniform(module, fraction: float, kinds=KINDS) -> list[LayerPlan]:
    return [LayerPlan(max(1, round(fraction * layer.width)) if layer.kind in kinds else layer.width, 1.0)
            for layer in encoder_layers(module.model)]


def test_the_default_is_lstsq_but_for_conv_and_none_is_plain_pruning():
    module = two_block_module()
    plan = _uniform(module, 0.5)
    default = prune_module(module, plan)
    torch.testing.assert_close(outputs(default), outputs(prune_module(module, plan, reconstruction="lstsq,conv=none")),
                               atol=0, rtol=0)
    plain = prune_module(module, [LayerPlan(p.keep, 0.0) for p in plan])
    torch.testing.assert_close(outputs(prune_module(module, plan, reconstruction="none")), outputs(plain),
                               atol=0, rtol=0)
    assert not torch.allclose(outputs(default), outputs(plain))
    assert not torch.allclose(outputs(prune_module(module, plan, reconstruction="fold")), outputs(default))


@pytest.mark.parametrize("name,scale", [("subsampling.0", 3.0), ("subsampling.1", 1.0), ("blocks.0.ffn", 1.0),
                                        ("blocks.1.ffn_macaron", 1.0), ("blocks.1.heads", 1.0)])
def test_lstsq_is_exact_for_a_unit_that_duplicates_a_kept_one(name, scale):
    """Unit 1 := scale * unit 0 (both the weakest): the pruned unit's activation is a multiple of a kept unit's on
    every input (ReLU for scale != 1), so the refit is exact on real inputs, not only on the synthetic ones. (Conv
    channels: only with inputs="model", below; the default inputs draw them independently.)"""
    module = two_block_module()
    layer = next(layer for layer in encoder_layers(module.model) if layer.name == name)
    for slot in layer.inputs:
        view, idx0 = _unit_view(module, slot, 0, layer.width)
        _, idx1 = _unit_view(module, slot, 1, layer.width)
        running = "running" in slot.key
        view[idx0] *= 1.0 if running else 0.3
        view[idx1] = view[idx0] * (1.0 if running else scale)
    reference = outputs(module)
    refit = prune_module(module, plan_without_one(module, name, 1.0), reconstruction="lstsq")
    torch.testing.assert_close(outputs(refit), reference, atol=1e-4, rtol=1e-4)
    plain = prune_module(module, plan_without_one(module, name, 1.0), reconstruction="none")
    assert not torch.allclose(outputs(plain), reference, atol=1e-4)


@pytest.mark.parametrize("name", ["blocks.0.ffn", "blocks.1.ffn_macaron"])
def test_lstsq_moves_a_constant_feed_forward_unit_into_the_bias_where_folding_cannot(name):
    """A unit with a zero input row and bias 2 outputs swish(2) on every input: an exact affine function (the
    intercept) of the kept units, which only the refit uses; the fold has no similar unit to put it into."""
    module = two_block_module()
    layer = next(layer for layer in encoder_layers(module.model) if layer.name == name)
    view, idx = _unit_view(module, layer.inputs[0], 3, layer.width)
    view[idx] = 0.0
    bias, idx = _unit_view(module, layer.inputs[1], 3, layer.width)
    bias[idx] = 2.0
    out, idx = _unit_view(module, layer.outputs[0], 3, layer.width)
    # A large outgoing column (not constant over the model width: the next LayerNorm would remove that).
    out[idx] = torch.linspace(-1.0, 1.0, out[idx].numel()).view_as(out[idx])
    reference = outputs(module)
    refit = prune_module(module, plan_without_one(module, name, 1.0), reconstruction="lstsq")
    torch.testing.assert_close(outputs(refit), reference, atol=1e-4, rtol=1e-4)
    for mode in ("fold", "none"):
        assert not torch.allclose(outputs(prune_module(module, plan_without_one(module, name, 1.0),
                                                       reconstruction=mode)), reference, atol=1e-3)


def test_lstsq_strength_scales_the_refit_and_per_kind_modes_combine():
    module = two_block_module()
    plan = _uniform(module, 0.5, kinds=("ffn",))
    none = outputs(prune_module(module, plan, reconstruction="none"))
    zero = outputs(prune_module(module, [LayerPlan(p.keep, 0.0) for p in plan], reconstruction="lstsq"))
    torch.testing.assert_close(zero, none, atol=0, rtol=0)
    mixed = prune_module(module, _uniform(module, 0.5), reconstruction="fold,ffn=lstsq")
    assert [p.shape for p in mixed.parameters()] == [p.shape for p in prune_module(module, _uniform(module, 0.5))
                                                       .parameters()]


def test_lstsq_reduces_the_output_distortion_of_feed_forward_and_conv_pruning():
    """On the random-init tiny model the refit of ffn units and conv channels lowers the data-free output KL of
    uniform pruning to half the units (a sanity check, not a measurement of a trained model)."""
    module = two_block_module()
    feats, lengths = synthetic_features(module.model.cmvn.mean, module.model.cmvn.std, 2, 100)
    distortion = OutputDistortion(module.model, feats, lengths)
    for kind in ("ffn", "conv"):
        plan = _uniform(module, 0.5, kinds=(kind,))
        assert distortion(prune_module(module, plan, reconstruction="lstsq").model) < distortion(
            prune_module(module, plan, reconstruction="none").model)


def test_a_shared_context_reuses_activations_only_while_their_inputs_are_unchanged():
    """A search reuses one LstsqContext: its cached activations must give the same models as fresh contexts, also
    when an earlier layer's decision (subsampling.0) changes a later layer's inputs (subsampling.1)."""
    from asrprune.pruning.autodfp.reconstruction import LstsqContext

    module = two_block_module()
    shared = LstsqContext(module.model)
    layers = encoder_layers(module.model)
    plans = [_uniform(module, 0.5), _uniform(module, 0.7),
             [LayerPlan(layer.width - 3 * (layer.name == "subsampling.0"), 1.0) for layer in layers],
             _uniform(module, 0.5)]
    for plan in plans:
        torch.testing.assert_close(outputs(prune_module(module, plan, reconstruction="lstsq", context=shared)),
                                   outputs(prune_module(module, plan, reconstruction="lstsq")), atol=0, rtol=0)


@pytest.mark.parametrize("name", ["blocks.0.heads", "blocks.0.conv"])
def test_lstsq_with_model_inputs_is_exact_for_duplicates_and_ignores_constant_columns(name):
    """The alternative input source (the original model's own LayerNorm outputs on synthetic filterbanks) is exact
    where the Gaussian one is (without the ridge, which shrinks along the correlated contexts); a kept column that
    is constant (a zeroed unit) gets coefficient 0, not noise / 0."""
    from asrprune.pruning.autodfp.reconstruction import LstsqContext

    module = two_block_module()
    layer = next(layer for layer in encoder_layers(module.model) if layer.name == name)
    for slot in layer.inputs:
        view, idx0 = _unit_view(module, slot, 0, layer.width)
        _, idx1 = _unit_view(module, slot, 1, layer.width)
        view[idx0] *= 1.0 if "running" in slot.key else 0.3  # BatchNorm statistics are copied, not scaled
        view[idx1] = view[idx0]
    reference = outputs(module)
    context = LstsqContext(module.model, inputs="model", block_utterances=4, block_frames=200, ridge=0.0)
    refit = prune_module(module, plan_without_one(module, name, 1.0), reconstruction="lstsq", context=context)
    torch.testing.assert_close(outputs(refit), reference, atol=1e-4, rtol=1e-4)
    g = torch.Generator().manual_seed(0)
    kept = torch.randn(300, 4, generator=g, dtype=torch.float64)
    kept[:, 2] = 1.5
    coef = least_squares(kept, kept[:, :1] * 2, ridge=1e-5)
    assert coef[2, 0] == 0 and coef[0, 0] == pytest.approx(2.0, rel=1e-3)
