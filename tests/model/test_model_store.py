"""The model store (asrprune.model.store): every kind of model file round-trips through save_model/load_model, and
every reader of models (add-language, train --init) starts from a compact sparse export too."""
from __future__ import annotations

import json

import pytest
import torch

from asrprune.cli import main
from asrprune.data.targets import load_target_units
from asrprune.files import CorruptCheckpoint
from asrprune.model.store import StoredModel, load_model, save_model
from asrprune.pruning.autodfp.baselines import uniform_plan
from asrprune.pruning.autodfp.budget import Budget
from asrprune.pruning.autodfp.prune import prune_module
from asrprune.pruning.masking.export import export_sparse
from asrprune.pruning.masking.masked_models import with_masks
from asrprune.training.config import load_config
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import language_tokens, read_data_dirs, train
from tests.helpers.tiny_experiment import TINY_OVERRIDES

TOKENS = ["<blank>", "a", "b", "e", "ʃ"]
LANGUAGE_TOKENS = {"de": ["a", "b", "ʃ"], "fr": ["a", "e"]}
ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1, "cnn_module_kernel": 3}
OPTIM = {"lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.1}


def tiny_module() -> CTCModule:
    torch.manual_seed(0)
    return CTCModule(TOKENS, LANGUAGE_TOKENS, {"encoder": ENCODER, "specaug": None, "output_layer": {"type": "flat"}},
                     OPTIM, max_steps=10)


def random_masks(module: CTCModule, keep: float = 0.4) -> CTCModule:
    """``module`` with every mask row set to a random keep pattern (a different one per row)."""
    masks = module.model.masks
    for row in range(masks.state.num_masks):
        masks.set_row(row, {name: torch.rand(masks.weight(name).shape) < keep for name in masks.names})
    return module


def outputs(model: torch.nn.Module) -> torch.Tensor:
    """Log-probabilities (2, T', V) of a fixed input, once per language (single-language batches, as pathways
    need)."""
    feats = torch.randn(1, 60, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.cat([model.eval()(feats, torch.tensor([60]), torch.tensor([lang]))[0] for lang in (0, 1)])


def assert_same_state(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    assert [k for k in expected if not torch.equal(got[k], expected[k])] == []


def test_dense_model_round_trips_in_lightning_layout(tmp_path):
    module = tiny_module()
    save_model(module.stored(), tmp_path / "dense.ckpt")
    loaded = load_model(tmp_path / "dense.ckpt")
    assert isinstance(loaded, StoredModel) and not loaded.model.training
    assert loaded.hparams == dict(module.hparams)
    assert (loaded.tokens, loaded.languages, loaded.target_unit, loaded.num_mel_bins) == (
        TOKENS, ["de", "fr"], "phone", 80)
    assert_same_state(loaded.model.state_dict(), module.model.state_dict())
    # Lightning reads the same file.
    assert_same_state(CTCModule.load_from_checkpoint(tmp_path / "dense.ckpt").state_dict(), module.state_dict())


def test_masked_model_round_trips_with_masks_and_scores(tmp_path):
    module = random_masks(with_masks(tiny_module(), {"per_language": True, "scores": True}))
    save_model(module.stored(), tmp_path / "masked.ckpt")
    loaded = load_model(tmp_path / "masked.ckpt")
    assert loaded.model.masks.spec == module.model.masks.spec
    assert_same_state(loaded.model.state_dict(), module.model.state_dict())
    torch.testing.assert_close(outputs(loaded.model), outputs(module.model))


def test_resized_model_round_trips(tmp_path):
    module = tiny_module().eval()
    pruned = prune_module(module, uniform_plan(Budget(module, "params", 0.6), "merge"))
    save_model(pruned.stored(), tmp_path / "resized.ckpt")
    loaded = load_model(tmp_path / "resized.ckpt")
    assert loaded.hparams["model"]["encoder_widths"] == pruned.hparams.model["encoder_widths"]
    assert_same_state(loaded.model.state_dict(), pruned.model.state_dict())
    torch.testing.assert_close(outputs(loaded.model), outputs(pruned.model))


def test_narrow_front_end_round_trips_and_prunes(tmp_path):
    """model.subsampling_channels narrows both subsampling convolutions; the model saves, loads and prunes
    structurally like a default one (AutoDFP's layout reads the narrower widths)."""
    torch.manual_seed(0)
    model_config = {"encoder": ENCODER, "specaug": None, "output_layer": {"type": "flat"}, "subsampling_channels": 8}
    module = CTCModule(TOKENS, LANGUAGE_TOKENS, model_config, OPTIM, max_steps=10).eval()
    conv = module.model.encoder.embed.conv
    assert (conv[0].out_channels, conv[2].out_channels, conv[2].in_channels) == (8, 8, 8)
    save_model(module.stored(), tmp_path / "narrow.ckpt")
    loaded = load_model(tmp_path / "narrow.ckpt")
    assert_same_state(loaded.model.state_dict(), module.model.state_dict())
    pruned = prune_module(loaded, uniform_plan(Budget(loaded, "params", 0.6), "merge"))
    assert pruned.hparams.model["encoder_widths"]["subsampling"][1] < 8
    save_model(pruned.stored(), tmp_path / "pruned.ckpt")
    torch.testing.assert_close(outputs(load_model(tmp_path / "pruned.ckpt").model), outputs(pruned.model))


def test_compact_export_loads_as_the_masked_model_without_scores(tmp_path):
    module = random_masks(with_masks(tiny_module(), {"per_language": True, "scores": True}))
    save_model(module.stored(), tmp_path / "masked.ckpt")
    export_sparse(tmp_path / "masked.ckpt", tmp_path / "all.pt")
    loaded = load_model(tmp_path / "all.pt")
    assert torch.load(tmp_path / "all.pt", weights_only=False)["format"] == "asrprune-sparse-1"
    assert loaded.model.masks.spec == {"per_language": True, "scores": False, "dormant_trainable": False}
    masks = module.model.masks
    for name in masks.names:
        assert torch.equal(loaded.model.masks.mask(name), masks.mask(name))
        kept = masks.mask(name).any(0)
        assert torch.equal(loaded.model.masks.weight(name)[kept], masks.weight(name).detach()[kept])
    torch.testing.assert_close(outputs(loaded.model), outputs(module.model))


def test_compact_save_checks_the_rows_against_the_spec(tmp_path):
    module = with_masks(tiny_module(), {"per_language": True})
    with pytest.raises(ValueError, match="1 mask rows"):
        save_model(module.stored(), tmp_path / "x.pt", mask_rows=[0])
    with pytest.raises(ValueError, match="dense model"):
        save_model(tiny_module().stored(), tmp_path / "x.pt", mask_rows=[0])


def test_bad_files_stop_with_one_line_naming_the_file(tmp_path):
    save_model(tiny_module().stored(), tmp_path / "good.ckpt")
    data = (tmp_path / "good.ckpt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpoint, match="truncated.ckpt: not a readable checkpoint") as error:
        load_model(tmp_path / "truncated.ckpt")
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_model(tmp_path / "missing.ckpt")
    torch.save({"mean": torch.zeros(80)}, tmp_path / "cmvn.pt")
    with pytest.raises(ValueError, match="cmvn.pt: not a model file"):
        load_model(tmp_path / "cmvn.pt")
    stored = torch.load(tmp_path / "good.ckpt", weights_only=False)
    stored["hyper_parameters"]["model"]["encoder"] = {**ENCODER, "linear_units": 32}
    torch.save(stored, tmp_path / "other_shape.ckpt")
    with pytest.raises(ValueError, match="other_shape.ckpt: the weights do not fit"):
        load_model(tmp_path / "other_shape.ckpt")


def test_add_language_starts_from_a_compact_export(tmp_path, capsys):
    module = random_masks(with_masks(tiny_module(), {"per_language": True}))
    save_model(module.stored(), tmp_path / "masked.ckpt")
    export_sparse(tmp_path / "masked.ckpt", tmp_path / "all.pt")
    lexicon = tmp_path / "lexicon_es.txt"
    lexicon.write_text("hola o l a\nmaña m a ɲ a\n", encoding="utf-8")
    assert main(["add-language", "--checkpoint", str(tmp_path / "all.pt"), "--lang", "es", "--lexicon",
                 str(lexicon), "--out", str(tmp_path / "es.ckpt")]) == 0, capsys.readouterr().err
    added = load_model(tmp_path / "es.ckpt")
    assert added.languages == ["de", "fr", "es"] and {"o", "l", "ɲ"} <= set(added.tokens)
    masks = module.model.masks
    for name in masks.names:  # the new language's pathway is the union of the others (--pathway union)
        assert torch.equal(added.model.masks.mask(name)[2], masks.mask(name).any(0))


def test_train_init_starts_from_a_compact_export(tiny_data, tmp_path):
    config = load_config(None, TINY_OVERRIDES + ["trainer.max_steps=2", "data.single_language_batches=true"])
    units = load_target_units(tiny_data["tokens"])
    torch.manual_seed(0)
    dense = CTCModule(units.tokens, language_tokens(read_data_dirs(tiny_data["train"]), units), config["model"],
                      config["optim"], max_steps=2)
    save_model(random_masks(with_masks(dense, {"per_language": True})).stored(), tmp_path / "masked.ckpt")
    export_sparse(tmp_path / "masked.ckpt", tmp_path / "de.pt", lang="de")
    exported = load_model(tmp_path / "de.pt")
    best = train(config, tiny_data["train"][:1], tiny_data["dev"][:1], None, tmp_path / "exp",
                 init_checkpoint=tmp_path / "de.pt")
    summary = json.loads((tmp_path / "exp" / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["languages"] == ["de"]
    tuned = load_model(best)
    assert tuned.languages == ["de"] and tuned.model.masks.state.num_masks == 1
    names = exported.model.masks.names
    assert all(torch.equal(tuned.model.masks.mask(n), exported.model.masks.mask(n)) for n in names)
    assert not all(torch.equal(tuned.model.masks.weight(n), exported.model.masks.weight(n)) for n in names)
