"""Adding an unseen language to a trained checkpoint (zero-shot) and fine-tuning it (few-shot)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from asrprune.data.kaldi_dir import read_data_dir, write_data_dir
from asrprune.decoding.decode_dir import decode_data_dir
from asrprune.model.store import load_model, save_model
from asrprune.training.add_language import add_language
from asrprune.training.config import load_config
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import train
from tests.helpers.tiny_experiment import TINY_OVERRIDES

NEW_PHONES = {"a", "b", "o", "ɲ"}  # "o" and "ɲ" are unseen in training


@pytest.fixture(scope="module")
def spanish(tiny_data, tmp_path_factory) -> dict:
    """A "Spanish" set: the shared corpus's German audio relabelled, phones rewritten into the new language's phone
    set; its data dirs ``train_es`` and ``test_es``."""
    root = tmp_path_factory.mktemp("spanish")
    rewrite = {"a": "a", "b": "b", "d": "o", "ʃ": "ɲ"}
    paths = {}
    for split in ("train", "test"):
        utts = [
            dataclasses.replace(u, lang="es", phones=tuple(rewrite[p] for p in u.phones))
            for u in read_data_dir(tiny_data["tokens"].parent / f"{split}_de")
        ]
        write_data_dir(root / f"{split}_es", utts)
        paths[f"{split}_es"] = root / f"{split}_es"
    return paths


@pytest.fixture(scope="module", params=["joinap_linear", "flat"])
def trained(request, tiny_data, tiny_model, tmp_path_factory) -> CTCModule:
    """A de + fr model of the tiny config with the param's output layer: the shared tiny model (flat, the config's
    default), or one with a JoinAP output layer trained here the same way."""
    if request.param == tiny_model.config["model"]["output_layer"]["type"]:
        return CTCModule.from_file(tiny_model.checkpoint)
    exp = tmp_path_factory.mktemp(request.param)
    config = load_config(None, TINY_OVERRIDES + [f"trainer.max_steps={tiny_model.steps}",
                                                 f"model.output_layer.type={request.param}"])
    return CTCModule.from_file(train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp))


def test_add_language_keeps_old_languages_and_adds_phones(trained):
    adapted = add_language(trained, "es", NEW_PHONES)
    old, new = trained.model, adapted.model
    assert new.languages == ["de", "fr", "es"]
    assert new.tokens[: len(old.tokens)] == old.tokens and set(new.tokens) >= NEW_PHONES
    # Shared tokens keep their embeddings bit for bit; the encoder is the same.
    shared = len(old.tokens)
    assert torch.equal(new.output_layer.embeddings()[:shared], old.output_layer.embeddings())
    assert all(torch.equal(a, b) for a, b in zip(old.encoder.state_dict().values(), new.encoder.state_dict().values()))
    feats, lengths = torch.randn(1, 120, 80), torch.tensor([120])
    log_probs, _ = new.eval()(feats, lengths, torch.tensor([2]))
    allowed = [new.tokens.index(p) for p in NEW_PHONES] + [0]
    assert torch.allclose(log_probs[0][:, allowed].exp().sum(-1), torch.ones(log_probs.shape[1]), atol=1e-4)
    # German is unchanged by the addition.
    old_de, _ = old.eval()(feats, lengths, torch.tensor([0]))
    new_de, _ = new(feats, lengths, torch.tensor([0]))
    assert torch.allclose(new_de[..., :shared], old_de, atol=1e-5)


def test_add_language_refuses_a_pathway_choice_for_a_dense_model(trained):
    with pytest.raises(ValueError, match="no per-language masks"):
        add_language(trained, "es", NEW_PHONES, pathway="closest")


def test_new_phone_embeddings_come_from_features_only_for_joinap(trained):
    adapted = add_language(trained, "es", NEW_PHONES)
    layer = adapted.model.output_layer
    row = adapted.model.tokens.index("ɲ")
    if trained.hparams.model["output_layer"]["type"] == "joinap_linear":
        # JoinAP: E = A P, so the new phone's row is the trained map applied to its phonological vector.
        assert torch.allclose(layer.embeddings()[row], layer.projection(layer.vectors[row]), atol=1e-6)
    else:
        assert "ɲ" not in trained.model.tokens  # a flat model has no trained row for it


def test_zero_shot_checkpoint_decodes_and_fine_tunes(trained, spanish, tmp_path):
    checkpoint = tmp_path / "es_zero_shot.ckpt"
    save_model(add_language(trained, "es", NEW_PHONES).stored(), checkpoint)
    rows = decode_data_dir(checkpoint, spanish["test_es"], tmp_path / "zero_shot")
    assert rows[0].metric == "PER (greedy)" and rows[0].counts.sentences == 6

    config = load_config(None, TINY_OVERRIDES + ["trainer.max_steps=2", "optim.lr=1e-3"])
    best = train(config, [spanish["train_es"]], [spanish["test_es"]], None, tmp_path / "few_shot",
                 init_checkpoint=checkpoint)
    summary = json.loads((tmp_path / "few_shot" / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["languages"] == ["de", "fr", "es"]
    tuned, start = load_model(best), load_model(checkpoint)
    assert tuned.model.tokens == start.model.tokens
    assert torch.equal(tuned.model.cmvn.mean, start.model.cmvn.mean)
    assert not torch.equal(
        tuned.model.encoder.encoders[0].feed_forward.w_1.weight, start.model.encoder.encoders[0].feed_forward.w_1.weight
    )


def test_subset_data_is_random_deterministic_and_checked(spanish, tmp_path, capsys):
    from asrprune.cli import main

    assert main(["subset-data", "--data", str(spanish["train_es"]), "--utts", "4", "--out", str(tmp_path / "a")]) == 0
    assert main(["subset-data", "--data", str(spanish["train_es"]), "--utts", "4", "--out", str(tmp_path / "b")]) == 0
    first, second = read_data_dir(tmp_path / "a"), read_data_dir(tmp_path / "b")
    assert len(first) == 4 and first == second
    assert {u.uttid for u in first} <= {u.uttid for u in read_data_dir(spanish["train_es"])}
    assert main(["subset-data", "--data", str(spanish["train_es"]), "--utts", "99", "--out", str(tmp_path / "c")]) == 1
    assert "asked for 99 utterances, it has 6" in capsys.readouterr().err


def test_crosslingual_table_layout(tmp_path):
    from asrprune.scoring.crosslingual_table import crosslingual_table
    from asrprune.scoring.error_rates import ErrorCounts
    from asrprune.scoring.result_table import ResultRow, write_results

    def counts(errors: int) -> ErrorCounts:
        return ErrorCounts(sentences=1, sentence_errors=1, ref_units=10, correct=10 - errors,
                           substitutions=errors, deletions=0, insertions=0)

    write_results([ResultRow("test_de", "PER (greedy)", counts(1))], tmp_path / "multi_flat" / "decode_test_de")
    write_results([ResultRow("test_pl", "PER (greedy)", counts(9))], tmp_path / "multi_flat" / "decode_zero_shot_test_pl")
    write_results(
        [ResultRow("test_pl", "PER (greedy)", counts(4))], tmp_path / "multi_joinap_linear" / "decode_zero_shot_test_pl"
    )
    table = crosslingual_table(tmp_path, ["flat", "joinap_linear"], ["de"], ["pl"])
    assert table.splitlines() == [
        "| setting | language | metric | flat | joinap_linear |",
        "|---|---|---|---|---|",
        "| multilingual | de | PER (greedy) | 10.0 | - |",
        "| zero-shot | pl | PER (greedy) | 90.0 | 40.0 |",
    ]
