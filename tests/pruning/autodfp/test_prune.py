"""AutoDFP pruning: unit removal, reconstruction, budget, and the pruned checkpoint's round trip (tiny models)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from asrprune.cli import main
from asrprune.decoding.decode_dir import decode_data_dir
from asrprune.model.conformer_layout import encoder_layers
from asrprune.model.mask_scores import topk_mask
from asrprune.model.store import load_model, save_model
from asrprune.pruning.autodfp.agent import PruningEnv, random_search, search
from asrprune.pruning.autodfp.baselines import uniform_plan
from asrprune.pruning.autodfp.budget import Budget, minimum_widths
from asrprune.pruning.autodfp.latency import LatencyTable, load_or_measure, measure, table_key
from asrprune.pruning.autodfp.distortion import OutputDistortion, synthetic_features
from asrprune.pruning.autodfp.prune import LayerPlan, prune_module
from asrprune.pruning.autodfp.units import layer_costs
from asrprune.pruning.masking.masked_models import with_masks
from asrprune.training.lightning_module import CTCModule
from tests.helpers.tiny_experiment import PHONES, TOKENS, TWO_BLOCK_ENCODER, two_block_module


def outputs(module: CTCModule, frames: int = 120) -> torch.Tensor:
    feats = torch.randn(2, frames, 80, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return module.model(feats, torch.tensor([frames, frames - 30]), torch.tensor([0, 1]))[0]


def _unit_view(module: CTCModule, slot, unit: int, width: int) -> torch.Tensor:
    """The entries of ``slot`` that belong to ``unit`` (a writable view moved to dim 0)."""
    tensor = module.model.encoder.state_dict(keep_vars=True)[slot.key].data
    return tensor.movedim(slot.dim, 0), slot.indices(torch.tensor([unit]), width)


def plan_without_one(module: CTCModule, name: str, strength: float) -> list[LayerPlan]:
    return [LayerPlan(layer.width - (layer.name == name), strength) for layer in encoder_layers(module.model)]


@pytest.mark.parametrize("name", ["subsampling.0", "subsampling.1", "blocks.1.ffn_macaron", "blocks.0.heads",
                                  "blocks.1.conv", "blocks.0.ffn"])
def test_removing_a_unit_with_zero_outgoing_weights_leaves_the_output_unchanged(name):
    module = two_block_module()
    layer = next(layer for layer in encoder_layers(module.model) if layer.name == name)
    unit = 1
    for slot in layer.outputs:
        view, idx = _unit_view(module, slot, unit, layer.width)
        view[idx] = 0
    for slot in layer.inputs:  # the least important unit, so that it is the one removed
        view, idx = _unit_view(module, slot, unit, layer.width)
        view[idx] *= 1e-3
    pruned = prune_module(module, plan_without_one(module, name, 0.0))
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in module.parameters())
    torch.testing.assert_close(outputs(pruned), outputs(module), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,scale", [("subsampling.0", 1.0), ("subsampling.0", 3.0), ("subsampling.1", 1.0),
                                        ("blocks.0.ffn", 1.0), ("blocks.1.heads", 1.0), ("blocks.0.conv", 1.0)])
def test_reconstruction_is_exact_for_identical_units(name, scale):
    """Unit 1 := scale * unit 0 (both the weakest); folding the pruned one into the other is exact. scale != 1 is
    exact only behind ReLU (subsampling), see asrprune.pruning.autodfp.reconstruction."""
    module = two_block_module()
    layer = next(layer for layer in encoder_layers(module.model) if layer.name == name)
    for slot in layer.inputs:
        view, idx0 = _unit_view(module, slot, 0, layer.width)
        _, idx1 = _unit_view(module, slot, 1, layer.width)
        running = "running" in slot.key  # BatchNorm statistics are copied, not scaled
        view[idx0] *= 1.0 if running else 0.3
        view[idx1] = view[idx0] * (1.0 if running else scale)
    reference = outputs(module)
    merged = prune_module(module, plan_without_one(module, name, 1.0), reconstruction="fold")
    plain = prune_module(module, plan_without_one(module, name, 0.0), reconstruction="fold")
    torch.testing.assert_close(outputs(merged), reference, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(outputs(plain), reference, atol=1e-4)  # the fold is what makes it exact


@pytest.fixture(scope="module")
def tiny_latency():
    """A latency table of the tiny model (one quick repeat: the values are noisy, the structure is what counts)."""
    module = two_block_module()
    layers = encoder_layers(module.model)
    return measure(module.model, layers, minimum_widths(layers), frames=[60, 100], batch=2, repeats=1)


@pytest.mark.parametrize("metric", ["latency", "flops", "params", "params+flops", "params+flops+latency"])
def test_budget_is_always_met_and_costs_are_counted_exactly(metric, tiny_latency):
    module = two_block_module()
    rng = np.random.default_rng(0)
    measured = "latency" in metric
    table = tiny_latency if measured else None
    preserves = (0.8, 0.5, 0.3)
    if measured:  # the tiny model's fixed per-call overhead is large and noisy: stay above its floor
        full = Budget(module, metric, 1.0, latency=table)
        lowest = full.ratio(full.minimum)
        preserves = tuple(lowest + (1 - lowest) * f for f in (0.8, 0.5, 0.2))
    for preserve in preserves:
        budget = Budget(module, metric, preserve, latency=table)
        plans = [uniform_plan(budget, "l1"), uniform_plan(budget, "merge")]
        env = PruningEnv(module, budget, evaluate=lambda plan: 1.0, reference=1.0)
        for _ in range(20):  # random agent actions, clipped by the action wall
            env.reset()
            done = False
            while not done:
                _, _, done, _, _ = env.step(rng.uniform(0, 1, size=2))
            plans.append(env.best[1] if env.best else None)
            env.best = None
        for plan in plans:
            widths = [p.keep for p in plan]
            assert budget.ratio(widths) <= preserve + 1e-9
        for plan in plans[2:] if not measured else ():
            # The agent's lower wall spends the budget up to a unit of the last layer (with a measured latency
            # table one unit can be a big step, so only the upper bound is guaranteed there).
            assert budget.ratio([p.keep for p in plan]) >= preserve - 0.02
        if measured:  # no exact count to compare with
            continue
        pruned = prune_module(module, plans[-1])
        if metric == "params+flops":  # both counted ratios within the budget, the larger one is the ratio
            ratios = [sum(p.numel() for p in pruned.parameters()) / sum(p.numel() for p in module.parameters()),
                      _macs(pruned, budget.frames) / _macs(module, budget.frames)]
            assert max(ratios) <= preserve + 1e-9 and budget.ratio([p.keep for p in plans[-1]]) == pytest.approx(
                max(ratios))
            continue
        assert budget.cost([p.keep for p in plans[-1]]) == pytest.approx(
            sum(p.numel() for p in pruned.parameters()) if metric == "params" else _macs(pruned, budget.frames))


def test_latency_table_is_monotone_reloads_and_rejects_another_model(tiny_latency, tmp_path):
    module = two_block_module()
    layers = encoder_layers(module.model)
    for key, seconds in tiny_latency.seconds.items():
        assert tiny_latency.widths[key][-1] == next(layer.width for layer in layers
                                                    if key in (layer.name, layer.kind))
        rows = np.atleast_2d(seconds)
        assert (np.diff(rows, axis=-1) >= 0).all() and (np.diff(rows, axis=0) >= 0).all() and (rows >= 0).all()
    for layer in layers:  # a narrower layer never costs more
        assert tiny_latency.lookup(layer, layer.width // 2, 8) <= tiny_latency.lookup(layer, layer.width, 8)
    path = tmp_path / "latency.json"
    tiny_latency.save(path)
    assert load_or_measure(module.model, layers, minimum_widths(layers), [60, 100], path) == tiny_latency
    with pytest.raises(ValueError, match=r"timed at input lengths \[60, 100\], not \[100\]"):
        load_or_measure(module.model, layers, minimum_widths(layers), [100], path)
    wider = CTCModule(TOKENS, PHONES, {"num_mel_bins": 80, "encoder": {**TWO_BLOCK_ENCODER, "linear_units": 96}},
                      {"lr": 1e-3, "weight_decay": 0, "warmup_fraction": 0.1}, max_steps=10)
    with pytest.raises(ValueError, match="latency.json: widths.ffn"):
        LatencyTable.load(path, encoder_layers(wider.model))
    with pytest.raises(ValueError, match="latency.json: measured with width multiple 1, not 8"):
        LatencyTable.load(path, layers, multiple=8)


def test_width_multiple_keeps_every_plan_on_measured_widths_within_the_budget():
    """With a width multiple, every layer of two multiples or more keeps a multiple of it or its dense width (the
    latency table's grid points), attention heads any count; the budget is still met by every plan."""
    module = two_block_module()
    layers = encoder_layers(module.model)
    table = measure(module.model, layers, minimum_widths(layers), frames=[100], batch=2, repeats=1, multiple=8)
    assert table.widths["ffn"] == [8, 16, 24, 32, 40, 48, 56, 64] and table.widths["heads"] == [1, 2]
    lowest = Budget(module, "params+flops+latency", 1.0, latency=table, multiple=8).ratio(
        [g[0] for g in Budget(module, "params", 1.0, multiple=8).allowed])
    rng = np.random.default_rng(0)
    for preserve in (lowest + 0.6 * (1 - lowest), lowest + 0.3 * (1 - lowest)):
        budget = Budget(module, "params+flops+latency", preserve, latency=table, multiple=8)
        env = PruningEnv(module, budget, evaluate=lambda plan: 1.0, reference=1.0)
        plans = [uniform_plan(budget, "l1")]
        for _ in range(10):
            env.reset()
            done = False
            while not done:
                _, _, done, _, _ = env.step(rng.uniform(0, 1, size=2))
            plans.append(env.best[1])
            env.best = None
        for plan in plans:
            widths = [p.keep for p in plan]
            assert budget.ratio(widths) <= preserve + 1e-9
            for layer, w in zip(layers, widths):
                assert w == layer.width or (w % 8 == 0 if layer.width >= 16 else 1 <= w <= layer.width)
            for layer, w in zip(layers, widths):  # on a grid point: looked up, never interpolated
                assert w in table.widths[table_key(layer)]
    with pytest.raises(ValueError, match="measured with width multiple 8, not 1"):
        Budget(module, "latency", 0.9, latency=table)
    with pytest.raises(ValueError, match=r"budget metric 'params\+macs'"):
        Budget(module, "params+macs", 0.9)


def test_random_search_evaluates_as_many_plans_as_the_agent_and_meets_the_budget():
    module = two_block_module()
    budget = Budget(module, "params", 0.5)
    feats, lengths = synthetic_features(module.model.cmvn.mean, module.model.cmvn.std, 2, 100)
    distortion = OutputDistortion(module.model, feats, lengths)
    result = random_search(module, budget, distortion, episodes=5)
    assert len(result.rewards) == 6 and budget.ratio([p.keep for p in result.plan]) <= 0.5 + 1e-9
    assert result.distortion == pytest.approx(-max(result.rewards) * result.reference)
    assert result.distortion == pytest.approx(distortion(prune_module(module, result.plan).model), abs=1e-6)


def _macs(module: CTCModule, frames: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        module.model(torch.randn(1, frames, 80), torch.tensor([frames]), torch.tensor([0]))
    return counter.get_total_flops() / 2


def test_agent_meets_the_budget_and_the_pruned_model_saves_loads_and_decodes(tiny_data, tmp_path):
    module = two_block_module()
    budget = Budget(module, "flops", 0.5)
    feats, lengths = synthetic_features(module.model.cmvn.mean, module.model.cmvn.std, 2, 100)
    result = search(module, budget, OutputDistortion(module.model, feats, lengths), episodes=6, warmup_episodes=2)
    assert budget.ratio([p.keep for p in result.plan]) <= 0.5 + 1e-9
    assert len(result.rewards) == 7 and result.distortion >= 0

    dense_ckpt = tmp_path / "dense.ckpt"
    save_model(module.stored(), dense_ckpt)
    out = tmp_path / "agent.ckpt"
    assert main(["autodfp", "--checkpoint", str(dense_ckpt), "--method", "agent", "--preserve", "0.5",
                 "--budget", "flops", "--episodes", "4", "--utterances", "2", "--out", str(out)]) == 0
    loaded = load_model(out)
    widths = loaded.hparams["model"]["encoder_widths"]
    assert widths["blocks"][0]["ffn"] <= TWO_BLOCK_ENCODER["linear_units"]
    assert sum(p.numel() for p in loaded.model.parameters()) < sum(p.numel() for p in module.parameters())
    assert layer_costs(encoder_layers(loaded.model), [layer.width for layer in encoder_layers(loaded.model)],
                       budget.dims, budget.frames)[0][1] < layer_costs(budget.layers, budget.dense, budget.dims,
                                                                      budget.frames)[0][1]
    rows = decode_data_dir(out, tiny_data["test"][0], tmp_path / "decode")
    assert rows[0].metric == "PER (greedy)" and rows[0].counts.ref_units > 0
    assert main(["autodfp", "--checkpoint", str(dense_ckpt), "--method", "l1", "--preserve", "0.01",
                 "--budget", "flops", "--out", str(tmp_path / "x.ckpt")]) == 1  # below the smallest reachable ratio


@pytest.mark.parametrize("metric", ["params", "flops"])
def test_pruning_a_joinap_model_meets_the_budget_and_round_trips(metric, tmp_path):
    """Nothing assumes the flat output layer: a JoinAP model prunes, saves and reloads."""
    torch.manual_seed(0)
    module = CTCModule(TOKENS, PHONES, {"num_mel_bins": 80, "encoder": TWO_BLOCK_ENCODER,
                                        "output_layer": {"type": "joinap_linear"}},
                       {"lr": 1e-3, "weight_decay": 0, "warmup_fraction": 0.1}, max_steps=10).eval()
    budget = Budget(module, metric, 0.6)
    plan = uniform_plan(budget, "merge")
    assert budget.ratio([p.keep for p in plan]) <= 0.6 + 1e-9
    pruned = prune_module(module, plan)
    if metric == "params":
        assert budget.cost([p.keep for p in plan]) == sum(p.numel() for p in pruned.parameters())
    save_model(pruned.stored(), tmp_path / "joinap.ckpt")
    torch.testing.assert_close(outputs(load_model(tmp_path / "joinap.ckpt")), outputs(pruned))


def test_a_finished_run_is_not_redone_and_a_killed_one_is(tmp_path, capsys):
    """The summary, written last and atomically, marks a finished run; without it (killed) the run starts over."""
    from asrprune.pruning.autodfp.cli import autodfp

    dense_ckpt = tmp_path / "dense.ckpt"
    save_model(two_block_module().stored(), dense_ckpt)
    out = tmp_path / "random.ckpt"
    first = autodfp(dense_ckpt, "random", 0.6, out, episodes=2, utterances=2)
    written = (out.stat().st_mtime_ns, out.with_name("random.ckpt.json").read_bytes())
    capsys.readouterr()
    assert autodfp(dense_ckpt, "random", 0.6, out, episodes=2, utterances=2) == first
    assert "nothing to do" in capsys.readouterr().out
    assert (out.stat().st_mtime_ns, out.with_name("random.ckpt.json").read_bytes()) == written
    assert autodfp(dense_ckpt, "random", 0.6, out, episodes=3, utterances=2)["episodes"] == 3  # other settings
    out.with_name("random.ckpt.json").unlink()  # as a kill before the summary leaves it
    capsys.readouterr()
    assert autodfp(dense_ckpt, "random", 0.6, out, episodes=2, utterances=2)["layers"] == first["layers"]
    assert "nothing to do" not in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))


def per_language_masked_module() -> CTCModule:
    """:func:`two_block_module` with per-language masks (a pathways model): de and fr each keep a different random 60 %
    of every prunable weight."""
    module = with_masks(two_block_module(), {"per_language": True}).eval()
    masks = module.model.masks
    generator = torch.Generator().manual_seed(2)
    for row in range(masks.state.num_masks):
        masks.set_row(row, {name: topk_mask(torch.rand(masks.weight(name).shape, generator=generator), 0.4)
                            for name in masks.names})
    return module


def test_autodfp_prunes_a_model_with_per_language_masks(tmp_path):
    """Pruning, the distortion check (one single-language batch per language) and the search run on a pathways
    model; every pathway loses exactly the units its weights lose and is still its language's own."""
    module = per_language_masked_module()
    masks = module.model.masks
    feats, lengths = synthetic_features(module.model.cmvn.mean, module.model.cmvn.std, 4, 100)
    distortion = OutputDistortion(module.model, feats, lengths)
    assert [lang_id for lang_id, _ in distortion.batches] == [0, 1]
    assert distortion(module.model) == 0.0
    keep_all = prune_module(module, [LayerPlan(layer.width, 1.0) for layer in encoder_layers(module.model)])
    assert distortion(keep_all.model) == pytest.approx(0.0, abs=1e-9)  # only weights no pathway used were dropped

    # One feed-forward unit removed: the least important by the weights some pathway uses.
    layers = encoder_layers(module.model)
    name = "encoders.0.feed_forward"
    w_1 = masks.weight(f"{name}.w_1").detach() * masks.mask(f"{name}.w_1").any(0)
    removed = int(w_1.abs().sum(1).argmin())
    kept = [u for u in range(w_1.shape[0]) if u != removed]
    pruned = prune_module(module, [LayerPlan(layer.width - (layer.name == "blocks.0.ffn"), 0.0) for layer in layers])
    pruned_masks = pruned.model.masks
    assert pruned_masks.names == masks.names and pruned_masks.state.per_language
    assert torch.equal(pruned_masks.mask(f"{name}.w_1"), masks.mask(f"{name}.w_1")[:, kept])
    assert torch.equal(pruned_masks.mask(f"{name}.w_2"), masks.mask(f"{name}.w_2")[:, :, kept])
    assert distortion(pruned.model) > 0

    budget = Budget(module, "params", 0.6)
    result = random_search(module, budget, distortion, episodes=2)
    searched = prune_module(module, result.plan)
    assert budget.ratio([p.keep for p in result.plan]) <= 0.6 + 1e-9
    assert result.distortion == pytest.approx(distortion(searched.model), abs=1e-6)
    stats = searched.model.masks.statistics(searched.model.languages)
    assert stats["overlap"][0][1] < 1  # the pathways stay different
    save_model(searched.stored(), tmp_path / "pruned.ckpt")
    assert distortion(load_model(tmp_path / "pruned.ckpt").model) == pytest.approx(distortion(searched.model))
