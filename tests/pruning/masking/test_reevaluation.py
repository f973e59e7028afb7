"""PARP-style re-evaluation options: adjust per pathway, global ranking, churn control, interval-accumulated saliency.

Fast tests on the tiny model's weights (one conformer block) with hand-made masks and one manual optimizer step;
one end-to-end DAP stage with every option on.
"""
from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from asrprune.model.mask_scores import swap_limited_topk
from asrprune.model.masked_optimizer import masked_optimizer_step
from asrprune.model.store import load_model
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.criteria import Magnitude, Saliency
from asrprune.pruning.masking.masked_models import with_masks
from asrprune.pruning.masking.methods import Methods, Setup
from asrprune.pruning.masking.runner import load_method_config
from asrprune.pruning.masking.schedule import SparsitySchedule
from asrprune.training.config import load_config
from asrprune.training.lightning_module import CTCModule
from tests.helpers.tiny_experiment import TINY_OVERRIDES

DE, FR = 0, 1


def _pathways(checkpoint, spec: dict, seed: int = 0) -> CTCModule:
    """The tiny model with two different random per-language masks (~50 % each) or one shared mask."""
    module = with_masks(CTCModule.from_file(checkpoint), spec)
    masks = module.model.masks
    generator = torch.Generator().manual_seed(seed)
    for name in masks.names:
        for row in range(masks.state.num_masks):
            masks.set_row(row, {name: torch.rand(masks.weight(name).shape, generator=generator) < 0.5})
    return module


def _step(module: CTCModule, lang: int) -> None:
    """One AdamW step (the pathway update rule of the Lightning module) on a random batch of language ``lang``."""
    model = module.model
    model.train()
    torch.manual_seed(1)
    feats = torch.randn(2, 64, model.cmvn.mean.numel())
    log_probs, _ = model(feats, torch.tensor([64, 60]), torch.tensor([lang, lang]))
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=1e-3)
    log_probs[..., 1].mean().backward()
    masked_optimizer_step(model.masks, optimizer, optimizer.step)


def _snapshot(masks) -> dict:
    out = {}
    for name in masks.names:
        out[name] = masks.weight(name).detach().clone()
        if masks.state.adjust:
            out[name + ".adjusted"] = masks.adjusted(name).detach().clone()
    return out


@pytest.mark.parametrize("adjust", [True, False])
def test_excluded_weights_train_from_their_language_only_with_adjust(tiny_model, adjust):
    """adjust: de's batch trains de's adjusted values where de's mask excludes the weight, never the shared θ
    there (fr's kept weights included), never fr's adjusted values. Off (static pathways): nothing de excludes
    moves."""
    spec = {"per_language": True, "adjust": adjust}
    module = _pathways(tiny_model.checkpoint, spec)
    masks = module.model.masks
    before = _snapshot(masks)
    _step(module, DE)
    for name in masks.names:
        de, fr = masks.mask(name)
        theta = masks.weight(name).detach()
        assert not torch.equal(theta[de], before[name][de])  # de's kept weights train
        assert torch.equal(theta[~de], before[name][~de])  # shared θ never moves outside de's pathway
        if adjust:
            adjusted, old = masks.adjusted(name).detach(), before[name + ".adjusted"]
            assert (adjusted[DE][~de] != 0).any()  # de's excluded weights train (from zero)...
            assert (adjusted[DE][~de & fr] != 0).any()  # ...those fr keeps as well, but not on θ
            assert torch.equal(adjusted[DE][de], old[DE][de]) and torch.equal(adjusted[FR], old[FR])


def test_adjust_with_one_mask_is_parp(tiny_model):
    """Monolingual adaptive masking (one shared mask): the excluded weights' adjusted values train, θ outside the
    mask does not."""
    module = _pathways(tiny_model.checkpoint, {"per_language": False, "adjust": True})
    masks = module.model.masks
    before = _snapshot(masks)
    _step(module, FR)
    name = masks.names[0]
    mask = masks.mask(name)[0]
    assert (masks.adjusted(name).detach()[0][~mask] != 0).any()
    assert torch.equal(masks.weight(name).detach()[~mask], before[name][~mask])


def test_adjust_excludes_dormant_trainable(tiny_model):
    with pytest.raises(ValueError, match="adjust"):
        with_masks(CTCModule.from_file(tiny_model.checkpoint), {"adjust": True, "dormant_trainable": True})


def _reevaluate(module, callback: AdaptiveMasking, step: int = 1) -> dict:
    return callback.reevaluate(SimpleNamespace(model=module.model, log=lambda *a, **k: None), step)


def test_adjusted_magnitude_makes_masks_language_specific(tiny_model):
    """Magnitude re-evaluation with adjust: each language ranks its kept |θ| against its own adjusted values, so
    from one mask the pathways diverge; a regrown weight no pathway used takes its adjusted value, one another
    pathway keeps keeps the shared θ, and adjusted values restart at zero where the row keeps or kept the weight."""
    module = with_masks(CTCModule.from_file(tiny_model.checkpoint), {"per_language": True, "adjust": True})
    masks = module.model.masks
    name = masks.names[0]
    theta = masks.weight(name)
    with torch.no_grad():
        # Weights 0..4 of the flat tensor: 0, 2, 3 dormant, 1 kept by fr only (θ = 5), 4 kept by de only. de's
        # adjusted values of 0, 1 and 2 are large, fr's of 0 and 3: each regrows its own (and both 0).
        for n in masks.names:
            masks.set_row(DE, {n: theta.new_ones(masks.weight(n).shape, dtype=torch.bool)})
            masks.set_row(FR, {n: theta.new_ones(masks.weight(n).shape, dtype=torch.bool)})
        flat_masks = masks.mask(name).view(2, -1)
        flat_masks[:, :4] = False
        flat_masks[FR, 1] = True
        flat_masks[FR, 4] = False
        theta.view(-1)[1] = 5.0
        adjusted = masks.adjusted(name).view(2, -1)
        adjusted[DE, [0, 1, 2]] = torch.tensor([10.0, 20.0, 30.0])
        adjusted[FR, [0, 3]] = torch.tensor([-40.0, 50.0])
    theta_before = theta.detach().clone().view(-1)
    sparsity = 1 - masks.mask(name)[DE].sum().item() / theta.numel()
    callback = AdaptiveMasking(Magnitude(), SparsitySchedule(sparsity, sparsity), 1, 10)
    _reevaluate(module, callback)
    new = masks.mask(name).view(2, -1)
    assert new[DE, [0, 1, 2]].all() and not new[DE, 3]
    assert new[FR, [0, 1, 3]].all() and not new[FR, 2]
    assert not torch.equal(masks.mask(name)[DE], masks.mask(name)[FR])  # language-specific
    flat = theta.detach().view(-1)
    assert flat[0] == pytest.approx((10.0 - 40.0) / 2)  # dormant, regrown by both: their mean
    assert flat[1] == theta_before[1]  # fr kept it: de joins the shared value
    assert flat[2] == pytest.approx(30.0) and flat[3] == pytest.approx(50.0)
    adjusted = masks.adjusted(name).detach().view(2, -1)
    assert not adjusted[DE][new[DE]].any() and not adjusted[FR][new[FR]].any()


def test_global_ranking_keeps_the_exact_overall_sparsity(tiny_model):
    module = with_masks(CTCModule.from_file(tiny_model.checkpoint), {"per_language": False})
    masks = module.model.masks
    with torch.no_grad():
        masks.weight(masks.names[0]).mul_(10.0)  # one tensor on a larger scale: it keeps more
    total = masks.num_weights()
    for ranking in ("global", "tensor"):
        callback = AdaptiveMasking(Magnitude(), SparsitySchedule(0.7, 0.7), 1, 10, ranking=ranking)
        _reevaluate(module, callback)
        kept = {name: int(masks.mask(name)[0].sum()) for name in masks.names}
        sparsities = {name: 1 - kept[name] / masks.weight(name).numel() for name in masks.names}
        if ranking == "global":
            assert sum(kept.values()) == round(total * 0.3)
            assert max(sparsities.values()) - min(sparsities.values()) > 0.2
            assert sparsities[masks.names[0]] < 0.7
        else:
            assert all(kept[n] == round(masks.weight(n).numel() * 0.3) for n in masks.names)


def _scores():
    """50 kept weights scoring 1; candidates: 20 score 2, 10 score 1.05, 20 score 0.5."""
    old = torch.arange(100) < 50
    scores = torch.cat([torch.ones(50), torch.full((20,), 2.0), torch.full((10,), 1.05), torch.full((20,), 0.5)])
    return scores, old


@pytest.mark.parametrize("keep, margin, cap, regrown", [
    (50, 0.0, 1.0, 30),  # plain top-k
    (50, 0.1, 1.0, 20),  # 1.05 does not beat 1 by 10 %
    (50, 0.0, 0.2, 10),  # at most 20 % of 50 swaps
    (50, 0.1, 0.1, 5),
    (40, 0.0, 0.1, 4),  # 10 pruned by the schedule, 4 swaps on top
    (60, 0.0, 0.1, 16),  # 10 forced regrowths + 6 swaps
])
def test_margin_and_cap_limit_swaps_exactly(keep, margin, cap, regrown):
    scores, old = _scores()
    new = swap_limited_topk(scores, old, keep, margin, cap)
    assert int(new.sum()) == keep
    assert int((new & ~old).sum()) == regrown
    assert bool(new[50:70].sum() == min(20, regrown))  # the best candidates come first
    if margin == 0 and cap == 1.0:
        assert torch.equal(new, torch.zeros_like(new).index_fill_(0, torch.topk(scores, keep).indices, True))


def test_cap_through_the_callback_counts(tiny_model):
    """Global ranking with a swap cap: each re-evaluation regrows at most the cap, and the record says how many."""
    module = with_masks(CTCModule.from_file(tiny_model.checkpoint), {"per_language": False})
    masks = module.model.masks
    generator = torch.Generator().manual_seed(3)
    for name in masks.names:
        masks.set_row(0, {name: torch.rand(masks.weight(name).shape, generator=generator) < 0.5})
    kept = sum(int(masks.mask(n)[0].sum()) for n in masks.names)
    sparsity = 1 - kept / masks.num_weights()
    callback = AdaptiveMasking(Magnitude(), SparsitySchedule(sparsity, sparsity), 1, 10, ranking="global",
                               max_swap_fraction=0.05)
    record = _reevaluate(module, callback)
    assert record["rows"][0]["regrown"] == record["rows"][0]["pruned"] == int(0.05 * kept)
    assert sum(int(masks.mask(n)[0].sum()) for n in masks.names) == kept


def _grads(masks, value: float, row: int) -> None:
    for name in masks.names:
        masks.scores(name, row).grad = torch.full_like(masks.scores(name, row), value)


def test_accumulated_saliency_is_the_interval_mean_and_survives_resume(tiny_model):
    module = with_masks(CTCModule.from_file(tiny_model.checkpoint), {"per_language": True, "scores": True})
    masks = module.model.masks
    name = masks.names[0]
    criterion = Saliency(accumulate=True)
    for value in (1.0, -2.0):
        _grads(masks, value, DE)
        criterion.before_optimizer_step(masks)
    callback = AdaptiveMasking(criterion, SparsitySchedule(0.5, 0.5), 5, 10)
    buffer = io.BytesIO()
    torch.save(callback.state_dict(), buffer)  # a checkpoint between two re-evaluations
    buffer.seek(0)
    resumed = AdaptiveMasking(Saliency(accumulate=True), SparsitySchedule(0.5, 0.5), 5, 10)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    for crit in (criterion, resumed.criterion):
        _grads(masks, -6.0, DE)
        crit.before_optimizer_step(masks)
        assert torch.allclose(crit.score(masks, name, DE), torch.full_like(masks.weight(name), 3.0))  # (1+2+6)/3
        assert crit.batches == {DE: 3}
    # fr had no batch in the interval: its mask stays; after a re-evaluation the interval restarts.
    fr_mask = masks.mask(name)[FR].clone()
    _reevaluate(module, resumed)
    assert resumed.criterion.batches == {} and not resumed.criterion.ema[name].any()
    assert torch.equal(masks.mask(name)[FR] | fr_mask, fr_mask)


def test_linear_ramp():
    schedule = SparsitySchedule(0.2, 0.8, 0, 100, shape="linear")
    assert schedule.at(50) == pytest.approx(0.5) and schedule.at(100) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        SparsitySchedule(0.2, 0.8, 0, 100, shape="exp")


def test_dap_with_parp_options_end_to_end(tiny_data, tiny_model, tmp_path):
    """DAP (middle init, magnitude) with adjust, global ranking, margin and cap, and the monolingual adaptive method
    with adjust, reach the target sparsity exactly; with adjust the magnitude masks become language-specific."""
    config = load_config(None, TINY_OVERRIDES + ["data.single_language_batches=true", "optim.lr=0.05"])
    conf = load_method_config(None, 1.0, 2)
    conf.update(steps=8, interval=1, reevaluation={"adjust": True, "ranking": "global", "margin": 0.05,
                                                   "max_swap_fraction": 0.5})
    setup = Setup(tiny_model.checkpoint, tiny_data["tokens"].parent, ["de", "fr"], config, conf, tmp_path)
    methods = Methods(setup, 0.6)
    model = load_model(methods.run("dap", "middle", "magnitude").models["de"]).model
    assert model.masks.spec["adjust"] and not model.masks.spec["dormant_trainable"]
    total = model.masks.num_weights()
    for row in range(2):
        assert sum(int(model.masks.mask(n)[row].sum()) for n in model.masks.names) == round(total * 0.4)
    assert model.masks.statistics(model.languages)["overlap"][0][1] < 1.0
    mono = load_model(methods.run("adaptive").models["fr"]).model
    assert sum(int(mono.masks.mask(n)[0].sum()) for n in mono.masks.names) == round(total * 0.4)


def test_adjust_model_exports_and_adds_a_language(tiny_model, tmp_path):
    """Adjusted values are training state: the compact export drops them (loads as zeros) and a new language's row
    starts at zero."""
    from asrprune.model.store import save_model
    from asrprune.training.add_language import add_language

    module = _pathways(tiny_model.checkpoint, {"per_language": True, "adjust": True})
    masks = module.model.masks
    with torch.no_grad():
        for name in masks.names:
            masks.adjusted(name).fill_(0.5)
    save_model(module.stored(), tmp_path / "masked.ckpt")
    save_model(module.stored(), tmp_path / "export.pt", mask_rows=[DE, FR])
    for path in ("masked.ckpt", "export.pt"):
        loaded = load_model(tmp_path / path).model.masks
        name = loaded.names[0]
        assert torch.equal(loaded.mask(name), masks.mask(name))
        assert bool((loaded.adjusted(name) == (0.5 if path == "masked.ckpt" else 0.0)).all())
    added = add_language(module, "pl", {"a"}, "union").model.masks
    name = added.names[0]
    assert added.adjusted(name).shape[0] == 3
    assert bool((added.adjusted(name)[:2] == 0.5).all()) and not added.adjusted(name)[2].any()


def test_adjust_and_accumulated_saliency_resume_bit_for_bit(tiny_data, tiny_model, tmp_path):
    """A DAP stage (saliency accumulated over ΔT = 3, adjust, cap) resumed from its step-4 checkpoint (one step into
    an interval: accumulated sums, adjusted values and their Adam moments in flight) ends as the uninterrupted
    stage: masks, weights, adjusted values, criterion state and history."""
    import shutil

    from asrprune.files import read_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = load_config(None, TINY_OVERRIDES + ["data.single_language_batches=true",
                                                     "trainer.checkpoint_every_n_steps=2"])
        conf = load_method_config(None, 1.0, 2)
        conf.update(steps=8, interval=3, reevaluation={"adjust": True, "ranking": "tensor", "margin": 0.0,
                                                       "max_swap_fraction": 0.5})
        conf["criteria"]["saliency"]["accumulate"] = True
        whole = Methods(Setup(tiny_model.checkpoint, tiny_data["tokens"].parent, ["de", "fr"], config, conf,
                              tmp_path / "whole"), 0.6)
        stage = Path(whole.run("dap", "middle", "saliency").stages[0])
        killed = tmp_path / "killed" / stage.relative_to(tmp_path / "whole")
        shutil.copytree(stage, killed)
        for path in [killed / "stage.json", killed / "train_summary.json", *killed.glob("checkpoints/*.ckpt")]:
            if path.name != "step0000004.ckpt":
                path.unlink(missing_ok=True)
        written = (killed / "checkpoints" / "step0000004.ckpt").stat().st_mtime_ns
        resumed = Methods(Setup(**{**vars(whole.setup), "exp": tmp_path / "killed"}), 0.6)
        again = Path(resumed.run("dap", "middle", "saliency").models["de"])
        # Resumed, not started over (that would rewrite step 4).
        assert (killed / "checkpoints" / "step0000004.ckpt").stat().st_mtime_ns == written
    finally:
        torch.set_num_threads(threads)
    a, b = read_checkpoint(stage / "checkpoints" / "last.ckpt"), read_checkpoint(again)
    assert a["global_step"] == b["global_step"] == 8
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert any(k.endswith(".adjusted") for k in a["state_dict"])
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    callback = next(k for k in a["callbacks"] if k.startswith("AdaptiveMasking"))
    assert a["callbacks"][callback]["history"] == b["callbacks"][callback]["history"]
    sa, sb = a["callbacks"][callback]["criterion"], b["callbacks"][callback]["criterion"]
    assert sa["batches"] == sb["batches"] and all(torch.equal(sa["ema"][n], sb["ema"][n]) for n in sa["ema"])


@pytest.mark.parametrize("start", ["zero", "weight"])
def test_adjusted_values_start_and_restart(tiny_model, start):
    """``adjust_from``: excluded weights' adjusted values start (and a pruned weight's restart) at zero or at θ."""
    module = _pathways(tiny_model.checkpoint, {"per_language": True, "adjust": True})
    masks = module.model.masks
    masks.start_adjusted(start)
    name = masks.names[0]
    theta, mask = masks.weight(name).detach(), masks.mask(name)
    for row in (DE, FR):
        expected = torch.where(mask[row], 0.0, theta if start == "weight" else torch.zeros_like(theta))
        assert torch.equal(masks.adjusted(name).detach()[row], expected)
    before = {n: masks.mask(n).clone() for n in masks.names}
    keep = round(theta.numel() * 0.2)
    callback = AdaptiveMasking(Magnitude(), SparsitySchedule(0.8, 0.8), 1, 10, adjust_restart=start)
    _reevaluate(module, callback)  # 50 % -> 80 %: many kept weights pruned
    pruned = before[name][DE] & ~masks.mask(name)[DE]
    assert int(masks.mask(name)[DE].sum()) == keep and pruned.any()
    restarted = masks.adjusted(name).detach()[DE][pruned]
    assert torch.equal(restarted, theta[pruned] if start == "weight" else torch.zeros_like(restarted))
