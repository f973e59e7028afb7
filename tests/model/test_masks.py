"""Weight masks (asrprune.model.mask_*): exact sparsity, pathway update rule, row scoped to a forward pass, storage
names, regrowth, export, resume, single-language batches derived from the model."""
from __future__ import annotations

import pytest
import torch

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.targets import load_target_units
from asrprune.model.mask_scores import topk_mask
from asrprune.model.mask_storage import (
    is_mask_state_key, masks_key, original_key, pack_sparse, plain_key, scores_key, unpack_sparse,
)
from asrprune.model.masked_optimizer import masked_optimizer_step
from asrprune.model.store import ENCODER_PREFIX, load_model, save_model
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.criteria import Magnitude, Saliency
from asrprune.pruning.masking.export import export_sparse
from asrprune.pruning.masking.masked_models import magnitude_masks, with_masks
from asrprune.pruning.masking.schedule import SparsitySchedule
from asrprune.training.config import load_config
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import language_tokens, read_data_dirs, train
from tests.helpers.tiny_experiment import TINY_OVERRIDES, InterruptAtStep

TOKENS = ["<blank>", "a", "b", "e", "ʃ"]
ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1, "cnn_module_kernel": 3}


def tiny_module(spec: dict | None = None) -> CTCModule:
    torch.manual_seed(0)
    model = {"encoder": ENCODER, "specaug": None, "output_layer": {"type": "flat"}}
    if spec is not None:
        model["masks"] = spec
    return CTCModule(TOKENS, {"de": ["a", "b", "ʃ"], "fr": ["a", "e"]}, model,
                     {"lr": 1e-2, "weight_decay": 0.1, "warmup_fraction": 0.1}, max_steps=10)


def step_on_language(module: CTCModule, optimizer, lang_id: int) -> None:
    """One AdamW step on a random batch of one language, through the pathway update rule."""
    def closure():
        optimizer.zero_grad()
        log_probs, _ = module.model(torch.randn(2, 40, 80), torch.tensor([40, 40]), torch.tensor([lang_id] * 2))
        log_probs.sum().neg().backward()
    masked_optimizer_step(module.model.masks, optimizer, lambda: optimizer.step(closure))


def test_topk_mask_keeps_exact_sparsity():
    scores = torch.randn(37, 11)
    for sparsity in (0.0, 0.5, 0.7, 0.9):
        assert int(topk_mask(scores, sparsity).sum()) == round(37 * 11 * (1 - sparsity))
    with pytest.raises(ValueError):
        topk_mask(scores, 1.0)
    module = with_masks(tiny_module(), {"per_language": False})
    masks = magnitude_masks(module, 0.7)
    module.model.masks.set_row(0, {name: m[0] for name, m in masks.items()})
    stats = module.model.masks.statistics(module.model.languages)
    for name in module.model.masks.names:
        numel = module.model.masks.weight(name).numel()
        assert int(module.model.masks.mask(name)[0].sum()) == round(numel * 0.3)
    assert stats["sparsity"]["shared"] == pytest.approx(0.7, abs=1e-3)


def test_masked_weights_get_no_update_from_another_languages_batch():
    """Disjoint pathways de/fr: a French step (AdamW with momentum from a German step, weight decay) moves no weight
    that is only German, and the forward pass uses θ ⊙ m_l."""
    module = with_masks(tiny_module(), {"per_language": True})
    masks = module.model.masks
    for name in masks.names:
        de = torch.rand(masks.weight(name).shape) < 0.5
        masks.set_row(0, {name: de})
        masks.set_row(1, {name: ~de})
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=0.1)
    step_on_language(module, optimizer, 0)  # German step: gives the German weights AdamW momentum
    before = {name: masks.weight(name).detach().clone() for name in masks.names}
    step_on_language(module, optimizer, 1)
    for name in masks.names:
        only_de = masks.mask(name)[0] & ~masks.mask(name)[1]
        after = masks.weight(name).detach()
        assert torch.equal(after[only_de], before[name][only_de]), name
        assert not torch.equal(after[masks.mask(name)[1]], before[name][masks.mask(name)[1]]), name
    # The effective weight of language 1 is θ ⊙ m_1.
    name = masks.names[0]
    with masks.selected(1, record=False):
        module_weight = module.model.encoder.get_submodule(name).weight
    assert torch.equal(module_weight, masks.weight(name) * masks.mask(name)[1])
    with pytest.raises(ValueError, match="single-language batches"):
        module.model(torch.randn(2, 40, 80), torch.tensor([40, 40]), torch.tensor([0, 1]))


def test_storage_names_are_derived_in_one_place_and_round_trip(tmp_path):
    """Every masked tensor of a state dict sits under the key mask_storage derives; plain_key maps the masked
    model's weights onto the dense model's keys; pack/unpack restore the same keys and values."""
    dense = tiny_module()
    module = with_masks(dense, {"per_language": True, "scores": True})
    masks, state = module.model.masks, module.state_dict()
    prefix = ENCODER_PREFIX
    derived = {key for name in masks.names for key in (
        original_key(prefix, name), masks_key(prefix, name), *(scores_key(prefix, name, r) for r in (0, 1)))}
    assert derived <= state.keys()
    assert {k for k in state if is_mask_state_key(k)} == derived - {original_key(prefix, n) for n in masks.names}
    assert {plain_key(k) for k in state if not is_mask_state_key(k)} == dense.state_dict().keys()
    for name in masks.names:
        masks.set_row(1, {name: topk_mask(torch.rand(masks.weight(name).shape), 0.5)})
    state = module.state_dict()
    unpacked = unpack_sparse(pack_sparse(state, masks, [0, 1], prefix), prefix)
    assert unpacked.keys() == {k for k in state if "scores" not in k}
    for name in masks.names:
        kept = state[masks_key(prefix, name)].any(0)
        assert torch.equal(unpacked[masks_key(prefix, name)], state[masks_key(prefix, name)])
        assert torch.equal(unpacked[original_key(prefix, name)][kept], state[original_key(prefix, name)][kept])


def test_mask_row_is_scoped_to_one_forward_pass():
    """Each forward uses its batch's language's row and leaves none selected: two forwards of different languages
    in a row each equal a model whose only mask is that language's."""
    module = with_masks(tiny_module(), {"per_language": True}).eval()
    masks, model = module.model.masks, module.model
    rows = {lang: {n: topk_mask(torch.rand(masks.weight(n).shape), 0.5) for n in masks.names} for lang in (0, 1)}
    for row, chosen in rows.items():
        masks.set_row(row, chosen)
    assert [model.mask_row(lang) for lang in ("de", "fr")] == [0, 1] and model.needs_single_language_batches
    feats, lengths = torch.randn(2, 40, 80), torch.tensor([40, 35])
    with torch.no_grad():
        outputs = [model(feats, lengths, torch.tensor([lang] * 2))[0] for lang in (0, 1, 0)]
        assert masks.state.current is None
        with pytest.raises(RuntimeError, match="outside a forward pass"):
            model.encoder.get_submodule(masks.names[0]).weight
        for lang, output in zip((0, 1, 0), outputs):
            single = with_masks(module, {"per_language": False}, {n: m[None] for n, m in rows[lang].items()})
            assert single.model.mask_row("fr") == 0 and not single.model.needs_single_language_batches
            torch.testing.assert_close(output, single.eval().model(feats, lengths, torch.tensor([lang] * 2))[0])
    assert not torch.equal(outputs[0], outputs[1])
    model.train()
    model(feats, lengths, torch.tensor([1, 1]))
    assert masks.state.seen == {1} and masks.state.current is None  # recorded for the next optimizer step


def test_single_language_batches_follow_the_models_masks(tiny_data):
    """The data module gives a pathways model single-language batches without being asked (and keeps them shared by
    the ranks of a step); a dense model gets what the config asks for."""
    config = load_config(None, TINY_OVERRIDES)
    assert config["data"]["single_language_batches"] is False
    train_utts, dev_utts = read_data_dirs(tiny_data["train"]), read_data_dirs(tiny_data["dev"])
    units = load_target_units(tiny_data["tokens"])
    cache = FeatureCache(None, FbankConfig(80))
    dense = CTCModule(units.tokens, language_tokens(train_utts, units), config["model"], config["optim"], 10)
    pathways = with_masks(dense, {"per_language": True})
    for module, single in ((dense, False), (pathways, True)):
        datamodule = CTCDataModule(train_utts, dev_utts, units.encode, module.model, config["data"], cache)
        sampler = datamodule.train_dataloader().batch_sampler
        assert datamodule.single_language == sampler.single_language == single
        languages = datamodule.train_set.languages()
        purity = [len({languages[i] for i in batch}) == 1 for batch in sampler]
        assert all(purity) if single else not all(purity)


def test_reevaluation_regrows_a_pruned_weight():
    """Magnitude re-evaluation with dormant weights trainable: a pruned (dormant) weight that grew beyond the kept
    ones comes back; saliency scores pruned positions from the dense effective-weight gradient."""
    module = with_masks(tiny_module(), {"per_language": False, "dormant_trainable": True})
    masks = module.model.masks
    masks.set_row(0, {n: m[0] for n, m in magnitude_masks(module, 0.5).items()})
    name = masks.names[0]
    pruned = (~masks.mask(name)[0]).nonzero()[0].tolist()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
    step_on_language(module, optimizer, 0)
    assert masks.weight(name).grad[tuple(pruned)] != 0  # straight-through gradient reaches the dormant weight
    with torch.no_grad():
        masks.weight(name)[tuple(pruned)] = 100.0
    callback = AdaptiveMasking(Magnitude(), SparsitySchedule(0.5, 0.5), interval=1, stop_step=10)
    record = callback.reevaluate(module, step=1)
    assert masks.mask(name)[0][tuple(pruned)]
    assert record["rows"][0]["regrown"] >= 1
    assert int(masks.mask(name)[0].sum()) == round(masks.weight(name).numel() * 0.5)

    # Per-language saliency: a pathway-pruned weight gets a non-zero score from its language's gradient.
    module = with_masks(tiny_module(), {"per_language": True, "scores": True})
    masks = module.model.masks
    masks.set_row(1, {n: m[0] for n, m in magnitude_masks(module, 0.5).items()})
    saliency = Saliency(decay=0.0)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
    optimizer.zero_grad()
    log_probs, _ = module.model(torch.randn(2, 40, 80), torch.tensor([40, 40]), torch.tensor([1, 1]))
    log_probs.sum().neg().backward()
    saliency.before_optimizer_step(masks)
    pruned_fr = ~masks.mask(name)[1]
    assert (saliency.score(masks, name, 1)[pruned_fr] > 0).any()
    assert masks.scores(name, 1).grad is None  # cleared: the model's optimizer never moves the scores


def test_pruned_weight_stays_zero_in_the_export(tmp_path):
    module = with_masks(tiny_module(), {"per_language": True})
    masks = module.model.masks
    for name in masks.names:
        masks.set_row(0, {name: topk_mask(torch.rand(masks.weight(name).shape), 0.7)})
        masks.set_row(1, {name: topk_mask(torch.rand(masks.weight(name).shape), 0.7)})
    save_model(module.stored(), tmp_path / "masked.ckpt")
    full = export_sparse(tmp_path / "masked.ckpt", tmp_path / "all.pt")
    de = export_sparse(tmp_path / "masked.ckpt", tmp_path / "de.pt", lang="de")
    assert de["bytes"] < full["bytes"] < full["dense_bytes"]
    assert de["kept_fraction"] == pytest.approx(0.3, abs=0.01)
    loaded_de = load_model(tmp_path / "de.pt")
    assert loaded_de.model.languages == ["de"]
    name = masks.names[0]
    pruned = ~masks.mask(name)[0]
    with loaded_de.model.masks.selected(loaded_de.model.mask_row("de"), record=False):
        effective = loaded_de.model.encoder.get_submodule(name).weight
    assert torch.equal(effective[pruned], torch.zeros(int(pruned.sum())))
    assert torch.equal(effective[~pruned], masks.weight(name).detach()[~pruned])
    # The multilingual export decodes like the checkpoint, language by language.
    loaded_all = load_model(tmp_path / "all.pt")
    module.eval()
    feats, lengths = torch.randn(1, 40, 80), torch.tensor([40])
    with torch.no_grad():
        for lang_id in (0, 1):
            ids = torch.tensor([lang_id])
            assert torch.allclose(loaded_all.model(feats, lengths, ids)[0], module.model(feats, lengths, ids)[0])



def test_resume_restores_masks_and_schedule(tiny_data, tiny_model, tmp_path):
    config = load_config(None, TINY_OVERRIDES + ["trainer.max_steps=6", "trainer.val_check_interval=3"])
    init = with_masks(CTCModule.from_file(tiny_model.checkpoint),
                      {"per_language": True, "scores": True, "dormant_trainable": True})
    save_model(init.stored(), tmp_path / "init.ckpt")

    def callback():
        return AdaptiveMasking(Saliency(), SparsitySchedule(0.2, 0.6, 0, 6), interval=1, stop_step=6)

    exp = tmp_path / "dap"
    with pytest.raises(SystemExit):
        train(config, tiny_data["train"], tiny_data["dev"], None, exp, [callback(), InterruptAtStep(5)],
              init_checkpoint=tmp_path / "init.ckpt")
    saved = torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 3
    interrupted = load_model(exp / "checkpoints" / "last.ckpt").model.masks
    assert interrupted.statistics(["de", "fr"])["sparsity"]["de"] == pytest.approx(
        SparsitySchedule(0.2, 0.6, 0, 6).at(3), abs=0.01)
    resumed_callback = callback()
    train(config, tiny_data["train"], tiny_data["dev"], None, exp, [resumed_callback],
          init_checkpoint=tmp_path / "init.ckpt")
    steps = [record["step"] for record in resumed_callback.history]
    assert steps == [1, 2, 3, 4, 5, 6]  # history of the first run restored, then steps 4-6
    assert resumed_callback.criterion.rows_seen  # saliency accumulators restored/updated
    final = load_model(exp / "checkpoints" / "last.ckpt").model.masks
    assert final.statistics(["de", "fr"])["sparsity"]["fr"] == pytest.approx(0.6, abs=0.01)


# GPU-only findings: this machine has no GPU, so these skip here; benchmarks/gpu_smoke.py runs the same paths
# (a DAP saliency run interrupted and resumed, CUDA decoding of a compact export) wherever a GPU is lent.
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@needs_gpu
def test_saliency_state_restored_on_the_cpu_updates_on_the_gpu():
    module = with_masks(tiny_module(), {"per_language": True, "scores": True}).cuda()
    masks = module.model.masks
    saliency = Saliency()
    # What a resumed run gets: the EMA as read from the checkpoint, on the CPU.
    saliency.load_state_dict({"ema": {n: torch.ones(masks.mask(n).shape) for n in masks.names}, "rows_seen": [0]})
    feats, lengths, ids = torch.randn(2, 40, 80), torch.tensor([40, 40]), torch.tensor([0, 0])
    log_probs, _ = module.model(feats.cuda(), lengths.cuda(), ids.cuda())
    log_probs.sum().neg().backward()
    saliency.before_optimizer_step(masks)
    assert saliency.score(masks, masks.names[0], 0).device.type == "cuda"


@needs_gpu
def test_compact_export_decodes_on_the_gpu(tmp_path):
    module = with_masks(tiny_module(), {"per_language": True})
    masks = module.model.masks
    for name in masks.names:
        masks.set_row(0, {name: topk_mask(torch.rand(masks.weight(name).shape), 0.7)})
    save_model(module.stored(), tmp_path / "masked.ckpt")
    export_sparse(tmp_path / "masked.ckpt", tmp_path / "all.pt")
    feats, lengths, ids = torch.randn(1, 40, 80), torch.tensor([40]), torch.tensor([0])
    with torch.no_grad():
        on_cpu = load_model(tmp_path / "all.pt").model(feats, lengths, ids)[0]
        on_gpu = load_model(tmp_path / "all.pt", "cuda").model(feats.cuda(), lengths.cuda(), ids.cuda())[0]
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-4)
