"""Configs checked completely before any work, and one-line errors (no traceback) for bad configs and checkpoints."""
from __future__ import annotations

import random

import pytest
import torch

from asrprune.cli import main
from asrprune.pruning.masking.runner import load_method_config
from asrprune.training.config import ConfigError, load_config

TRAIN = ["train", "--train", "data/train_de", "--dev", "data/dev_de", "--tokens", "phones.txt"]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``asrprune ARGV``."""
    capsys.readouterr()
    status = main(argv)
    return status, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("override, expected", [
    ("trainer.max_step=5", "unknown key 'trainer.max_step'; did you mean 'trainer.max_steps'?"),
    ("optim.warmup_fraktion=0.1", "unknown key 'optim.warmup_fraktion'; did you mean 'optim.warmup_fraction'?"),
    ("model.encoder.num_block=2", "did you mean 'model.encoder.num_blocks'?"),  # ConformerEncoder's signature
    ("model.specaug.num_time_masks=2", "did you mean 'model.specaug.num_time_mask'?"),  # SpecAug's signature
    ("trainer.gradient_clip_vals=1", "did you mean 'trainer.gradient_clip_val'?"),  # Lightning Trainer's signature
    ("data.max_batch_second=10", "did you mean 'data.max_batch_seconds'?"),
    ("trainer.max_steps=abc", "trainer.max_steps = 'abc' is not int"),
    ("model.encoder.dropout_rate=high", "model.encoder.dropout_rate = 'high' is not a number"),
    ("model.output_layer.type=joinap", "is not one of ['flat', 'joinap_linear', 'joinap_nonlinear']"),
    ("trainer.max_steps", "must look like section.key=value"),
])
def test_bad_override_stops_in_one_line_before_any_work(override, expected, tmp_path, capsys):
    exp = tmp_path / "exp"
    status, lines = run_cli(TRAIN + ["--exp", str(exp), "--set", override], capsys)
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"asrprune train: error: --set {override}: ") and expected in lines[0]
    assert not exp.exists()  # nothing was computed or written (no cmvn.pt)


def test_config_file_errors_name_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("model:\n  encoder:\n    output_size: 32\noptim:\n  lr: 1.0e-3\n  warmup_fraktion: 0.1\n")
    status, lines = run_cli(TRAIN + ["--exp", str(tmp_path / "exp"), "--config", str(config)], capsys)
    assert status == 1 and lines == [
        f"asrprune train: error: {config}, line 6: unknown key 'optim.warmup_fraktion'; "
        "did you mean 'optim.warmup_fraction'?"
    ]
    config.write_text("trainer:\n  max_steps: [3\n  devices: 1\n")
    status, lines = run_cli(TRAIN + ["--exp", str(tmp_path / "exp"), "--config", str(config)], capsys)
    assert status == 1 and len(lines) == 1 and f"{config}, line 3, column " in lines[0] and "malformed YAML" in lines[0]
    config.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="a config must be a YAML mapping"):
        load_config(config)


def test_valid_values_of_every_kind_are_accepted():
    config = load_config(None, [
        "trainer.devices=auto", "trainer.devices=[0,1]", "trainer.precision=bf16-mixed", "trainer.max_steps=10",
        "model.specaug=null", "model.encoder.dropout_rate=0", "data.speed_perturb=[1.0]", "data.feature_cache=dump",
        "model.output_layer.type=joinap_nonlinear", "model.output_layer.hidden=16", "optim.lr=1e-3",
    ])
    assert config["trainer"]["devices"] == [0, 1] and config["model"]["output_layer"]["hidden"] == 16
    assert config["model"]["specaug"] is None and config["optim"]["lr"] == pytest.approx(1e-3)


def test_method_config_shares_the_checks(tmp_path):
    path = tmp_path / "pathways.yaml"
    path.write_text("steps: 10\ncriteria:\n  saliency: {decai: 0.5}\n")
    with pytest.raises(ConfigError, match=r"line 3: unknown key 'criteria.saliency.decai'; did you mean "
                                          r"'criteria.saliency.decay'\?"):
        load_method_config(str(path), 1.0, 2)
    path.write_text("adaptive:\n  criterion: magnitud\n")
    with pytest.raises(ConfigError, match="adaptive.criterion = 'magnitud' is not one of"):
        load_method_config(str(path), 1.0, 2)
    path.write_text("dap:\n  reevaluation: {ranking: globl}\n")
    with pytest.raises(ConfigError, match=r"line 2: dap.reevaluation.ranking = 'globl' is not one of"):
        load_method_config(str(path), 1.0, 2)
    path.write_text("adaptive:\n  reevaluation: {marjin: 0.2}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'adaptive.reevaluation.marjin'; did you mean "
                                          r"'adaptive.reevaluation.margin'\?"):
        load_method_config(str(path), 1.0, 2)
    path.write_text("criteria:\n  scores: {lr: 0.1}\n")
    assert load_method_config(str(path), 1.0, 2)["criteria"] == {"saliency": {"decay": 0.9, "accumulate": False},
                                                                        "scores": {"lr": 0.1}}


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty"])
def test_unreadable_checkpoint_gives_one_line_naming_it(damage, tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, checkpoint)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes({"random bytes": random.Random(0).randbytes(len(data)), "truncated": data[:len(data) // 2],
                            "empty": b""}[damage])
    status, lines = run_cli(["decode", "--checkpoint", str(checkpoint), "--data", "d", "--out", "o"], capsys)
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"asrprune decode: error: {checkpoint}: not a readable checkpoint")
    status, lines = run_cli(["add-language", "--checkpoint", str(checkpoint), "--lang", "pl", "--lexicon", "x",
                             "--out", "y"], capsys)
    assert status == 1 and str(checkpoint) in lines[0] and len(lines) == 1
    monkeypatch.setenv("ASRPRUNE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        main(["decode", "--checkpoint", str(checkpoint), "--data", "d", "--out", "o"])


def test_config_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer:\n  max_steps: 10\nmodel:\n  output_layer: {type: flat}\n")
    config = load_config(path, ["trainer.max_steps=20", "data.speed_perturb=[1.0]", "optim.lr=1e-3"])
    assert config["trainer"]["max_steps"] == 20
    assert config["data"]["speed_perturb"] == [1.0]
    assert config["optim"]["lr"] == 1e-3
    assert config["trainer"]["val_check_interval"] == 250  # default kept
    path.write_text("trainr: {}\n")
    with pytest.raises(ValueError, match="trainr"):
        load_config(path)
    with pytest.raises(ValueError, match="section.key=value"):
        load_config(None, ["max_steps"])
