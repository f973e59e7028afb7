"""Pruning methods over masks (asrprune.pruning.masking) on a tiny model: baselines, DAP, new languages."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from asrprune.model.store import load_model, save_model
from asrprune.pruning.masking.masked_models import read_masks, with_masks
from asrprune.pruning.masking.methods import Methods, Setup
from asrprune.pruning.masking.report import write_report
from asrprune.pruning.masking.runner import grow_pathway, load_method_config, run_method
from asrprune.pruning.masking.schedule import SparsitySchedule
from asrprune.pruning.masking.unseen import unseen_language_table
from asrprune.scoring.error_rates import ErrorCounts
from asrprune.scoring.result_table import ResultRow, write_results
from asrprune.training.add_language import add_language, closest_language
from asrprune.training.config import load_config
from asrprune.training.lightning_module import CTCModule
from tests.helpers.tiny_experiment import TINY_OVERRIDES


@pytest.fixture(scope="module")
def setup(tiny_data, tiny_model, tmp_path_factory) -> Setup:
    """The methods' setup on the shared tiny model and corpus: 8 steps per stage, masks re-evaluated every step,
    stages written under a folder of this module's."""
    config = load_config(None, TINY_OVERRIDES + ["data.single_language_batches=true"])
    return Setup(tiny_model.checkpoint, tiny_data["tokens"].parent, ["de", "fr"], config,
                 {**load_method_config(None, 1.0, 2), "steps": 8, "interval": 1}, tmp_path_factory.mktemp("pruning"))


def kept(masks: dict, row: int = 0) -> int:
    return sum(int(m[row].sum()) for m in masks.values())


def test_cubic_schedule():
    schedule = SparsitySchedule(0.2, 0.8, start_step=10, ramp_steps=100)
    assert schedule.at(0) == pytest.approx(0.2) and schedule.at(10) == pytest.approx(0.2)
    assert schedule.at(60) == pytest.approx(0.8 - 0.6 * 0.5 ** 3)
    assert schedule.at(110) == schedule.at(500) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        SparsitySchedule(0.0, 1.0)


def test_lsp_is_per_language_imp_and_lth_rewinds(setup):
    methods = Methods(setup, 0.75)
    lsp = methods.run("lsp")
    assert lsp.steps == 8 and not lsp.multilingual and set(lsp.models) == {"de", "fr"}
    round1 = read_masks(setup.exp / "sparsity75" / "lsp" / "de" / "round1" / "checkpoints" / "last.ckpt")
    final = read_masks(lsp.models["de"])
    total = sum(m[0].numel() for m in final.values())
    assert kept(round1) == pytest.approx(total * 0.5, abs=len(final))  # 1 - (1 - 0.75)^(1/2)
    assert kept(final) == pytest.approx(total * 0.25, abs=len(final))
    assert all(bool((final[n] <= round1[n]).all()) for n in final)  # IMP masks only shrink

    methods.run("lth")
    rewound = load_model(setup.exp / "sparsity75" / "lth" / "de" / "round2" / "init.ckpt").model.masks
    dense = load_model(setup.dense_checkpoint).model.encoder
    name = rewound.names[0]
    assert torch.equal(rewound.weight(name).detach(), dense.get_submodule(name).weight)


def test_static_pathways_train_the_lsp_masks_jointly(setup):
    methods = Methods(setup, 0.75)
    static = methods.run("static")
    lsp = methods.run("lsp")
    assert static.multilingual and static.steps == lsp.steps + 8
    model = load_model(static.models["de"]).model
    for lang in ("de", "fr"):
        lsp_masks = read_masks(lsp.models[lang])
        row = model.languages.index(lang)
        assert all(torch.equal(model.masks.mask(n)[row], lsp_masks[n][0]) for n in model.masks.names)


@pytest.mark.parametrize("criterion", ["saliency", "magnitude", "scores"])
def test_dap_reaches_target_and_language_aware_criteria_diverge(setup, criterion):
    outcome = Methods(setup, 0.6).run("dap", "middle", criterion)
    model = load_model(outcome.models["de"]).model
    stats = model.masks.statistics(model.languages)
    for sparsity in stats["sparsity"].values():
        assert sparsity == pytest.approx(0.6, abs=1e-3)
    overlap = stats["overlap"][0][1]
    if criterion == "magnitude":
        assert overlap == pytest.approx(1.0)  # shared θ, |θ| scores: the same mask for every language
    else:
        assert overlap < 1.0
    assert stats["union_sparsity"] <= 0.6


def test_run_method_writes_result_and_report(setup, tmp_path):
    record = run_method(setup, "omp", 0.5)
    assert set(record["per"]) == {"de", "fr"} and set(record["wer"]) == {"de", "fr"}
    assert record["masks"]["sparsity"]["de"] == pytest.approx(0.5, abs=1e-3)
    assert record["steps"] == 8 and record["pathway_export_bytes"] < record["dense_bytes"]
    run_method(setup, "dense", 0.0)
    records = write_report(setup.exp, tmp_path / "report", heatmap_sparsity=0.5)
    assert [r["method"] for r in records] == ["dense", "omp"]
    assert (tmp_path / "report" / "wer_vs_sparsity.png").stat().st_size > 0
    assert (tmp_path / "report" / "mask_overlap.png").stat().st_size > 0
    assert "|50%|omp|" in (tmp_path / "report" / "results.md").read_text()


def test_finished_run_is_reused_only_with_the_same_method_settings(setup):
    first = run_method(setup, "omp", 0.5)
    assert run_method(setup, "omp", 0.5) == first  # same settings: the finished run is reused, not retrained
    changed = dataclasses.replace(setup, method_config={**setup.method_config, "interval": 3})
    with pytest.raises(ValueError, match=r"result\.json: .*other method settings \(interval differ\).*own --exp"):
        run_method(changed, "omp", 0.5)


def test_new_language_gets_union_or_closest_pathway(setup):
    module = with_masks(CTCModule.from_file(setup.dense_checkpoint), {"per_language": True})
    masks = module.model.masks
    for name in masks.names:
        shape = masks.weight(name).shape
        masks.set_row(0, {name: torch.rand(shape) < 0.3})
        masks.set_row(1, {name: torch.rand(shape) < 0.3})
    assert closest_language({"de": ["a", "b", "ʃ"], "fr": ["a", "e"]}, {"a", "e", "ʁ"}) == "fr"
    union = add_language(module, "pl", {"a", "ʃ", "w"}, "union").model.masks
    closest = add_language(module, "pl", {"a", "ʃ", "w"}, "closest").model.masks  # de shares a, ʃ
    for name in masks.names:
        assert torch.equal(union.mask(name)[2], masks.mask(name)[0] | masks.mask(name)[1])
        assert torch.equal(closest.mask(name)[2], masks.mask(name)[0])
        assert torch.equal(union.mask(name)[:2], masks.mask(name))
    with pytest.raises(ValueError, match="pathway"):
        add_language(module, "pl", {"a"}, "xx")


def test_grow_adapts_only_the_chosen_pathway(setup, tmp_path):
    static = Methods(setup, 0.75).run("static")
    before = load_model(static.models["fr"]).model
    config = {**setup.train_config, "trainer": {**setup.train_config["trainer"], "max_steps": 4}}
    grown = grow_pathway(static.models["fr"], "fr", [setup.data / "train_fr"], [setup.data / "dev_fr"], config,
                         tmp_path / "grow", "saliency", interval=1)
    after = load_model(grown).model
    de, fr = before.languages.index("de"), before.languages.index("fr")
    names = before.masks.names
    assert all(torch.equal(after.masks.mask(n)[de], before.masks.mask(n)[de]) for n in names)
    assert not all(torch.equal(after.masks.mask(n)[fr], before.masks.mask(n)[fr]) for n in names)
    assert after.masks.statistics(after.languages)["sparsity"]["fr"] == pytest.approx(0.75, abs=1e-3)


def test_unseen_language_table_names_each_pathway_and_reads_its_scores(setup, tmp_path):
    module = with_masks(CTCModule.from_file(setup.dense_checkpoint), {"per_language": True})
    masks = module.model.masks
    for name in masks.names:
        shape = masks.weight(name).shape
        masks.set_row(0, {name: torch.rand(shape) < 0.3})
        masks.set_row(1, {name: torch.rand(shape) < 0.4})
    exp = tmp_path / "unseen_pl"
    save_model(add_language(module, "pl", {"a", "ʃ", "w"}, "union").stored(), exp / "union" / "zero_shot.ckpt")
    save_model(add_language(module, "pl", {"a", "ʃ", "w"}, "closest").stored(), exp / "closest" / "zero_shot.ckpt")
    write_results([ResultRow("test_pl", "PER (greedy)", ErrorCounts(1, 1, 40, 30, 6, 4, 0))],
                  exp / "union" / "decode_zero_shot")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in
            unseen_language_table(exp, "pl").splitlines()[2:]}
    union_sparsity = masks.statistics(module.model.languages)["union_sparsity"]
    assert rows["union"][1:4] == ["union", f"{union_sparsity:.1%}", "25.0"]  # (6 + 4) / 40 errors
    assert rows["closest"][1:4] == ["de", f"{masks.statistics(['de', 'fr'])['sparsity']['de']:.1%}", "-"]
    assert "dense" not in rows
    with pytest.raises(OSError, match="zero_shot.ckpt"):
        unseen_language_table(tmp_path / "empty", "pl")


def test_each_adaptive_method_reads_its_own_reevaluation_over_the_shared_one(setup):
    conf = {**setup.method_config, "reevaluation": {"ranking": "global", "margin": 0.1},
            "dap": {"reevaluation": {"margin": 0.2}}, "adaptive": {"criterion": "magnitude",
                                                                  "reevaluation": {"adjust": True}}}
    methods = Methods(dataclasses.replace(setup, method_config=conf), 0.5)
    dap, adaptive = methods.reevaluation("dap"), methods.reevaluation("adaptive")
    assert (dap["ranking"], dap["margin"], dap["adjust"]) == ("global", 0.2, False)
    assert (adaptive["ranking"], adaptive["margin"], adaptive["adjust"]) == ("global", 0.1, True)
    assert methods._adaptive_spec("adaptive", False, "magnitude")["adjust"]
    assert "adjust" not in methods._adaptive_spec("dap", True, "magnitude")
