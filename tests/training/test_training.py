"""Training: a few steps, resume from a checkpoint, DDP with two CPU processes (gloo)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from asrprune.benchmarking.provenance import file_sha256
from asrprune.model.store import load_model
from asrprune.training.config import load_config
from asrprune.training.train import train
from tests.helpers.tiny_experiment import TINY_OVERRIDES, InterruptAtStep


def test_train_few_steps_then_resume_after_interrupt(tiny_data, tmp_path):
    exp = tmp_path / "exp"
    config = load_config(None, TINY_OVERRIDES + ["trainer.max_steps=4"])
    with pytest.raises(SystemExit):  # Lightning shuts down gracefully on Ctrl-C, then exits with status 1
        train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp,
              callbacks=[InterruptAtStep(3)])
    assert not (exp / "train_summary.json").exists()
    saved = torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 2  # saved at the step-2 validation

    best = train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp)
    resumed = json.loads((exp / "train_summary.json").read_text())
    assert resumed["global_step"] == 4 and resumed["steps_this_run"] == 2
    assert best.exists()
    assert resumed["languages"] == ["de", "fr"] and resumed["best_dev_per"] is not None
    record = resumed["provenance"]  # what made it: commit, command, config, the best checkpoint's hash, data
    assert "commit" in record and record["checkpoints"] == {str(best): file_sha256(best)}
    assert record["config"]["trainer"]["max_steps"] == 4
    assert record["data"]["dev"] == [str(d) for d in tiny_data["dev"]]
    final = torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["global_step"] == 4
    changed = [k for k in saved["state_dict"] if not torch.equal(saved["state_dict"][k], final["state_dict"][k])]
    assert changed, "resumed training did not update any weight"

    # a finished run is left alone: same best checkpoint, the summary keeps the real run's figures
    assert train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp) == best
    assert json.loads((exp / "train_summary.json").read_text()) == resumed


def test_checkpoint_is_self_contained(tiny_model):
    module = load_model(tiny_model.checkpoint)
    assert module.model.languages == ["de", "fr"]
    stats = torch.load(tiny_model.exp / "cmvn.pt")
    assert torch.allclose(module.model.cmvn.mean, stats["mean"])
    assert not torch.allclose(module.model.cmvn.std, torch.ones_like(stats["std"]))


def test_ddp_two_cpu_processes(tiny_data, tmp_path):
    """Lightning launches two gloo processes; each rank gets half of the batches, training finishes on both."""
    exp = tmp_path / "exp_ddp"
    overrides = [arg for o in TINY_OVERRIDES + ["trainer.max_steps=3"] for arg in ("--set", o)]
    command = [
        sys.executable, "-m", "asrprune.cli", "train", "--tokens", str(tiny_data["tokens"]), "--exp", str(exp),
        "--train", *map(str, tiny_data["train"]), "--dev", *map(str, tiny_data["dev"]),
        "--devices", "2", "--strategy", "ddp", *overrides,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["global_step"] == 3
    # Rank 0 saw only its shard: about half of each step's utterances.
    assert summary["utterances_seen"] < 3 * 8


def test_subword_targets_train_and_decode(tiny_data, tmp_path):
    """make-subwords -> train on sentencepiece pieces -> greedy decoding scored as WER."""
    from asrprune.decoding.decode_dir import decode_data_dir
    from asrprune.data.targets import SUBWORD, load_target_units
    from asrprune.phonology.subwords import train_sentencepiece
    from asrprune.training.train import read_data_dirs

    texts = [u.text for u in read_data_dirs(tiny_data["train"])]
    model_path = train_sentencepiece(texts, tmp_path / "chars", vocab_size=40, model_type="char")
    units = load_target_units(model_path)
    assert units.kind == SUBWORD and units.tokens[:2] == ["<blank>", "<unk>"]
    config = load_config(None, TINY_OVERRIDES + ["trainer.max_steps=2"])
    best = train(config, tiny_data["train"], tiny_data["dev"], model_path, tmp_path / "exp")
    module = load_model(best)
    assert module.target_unit == SUBWORD and module.tokens == units.tokens
    rows = decode_data_dir(best, tiny_data["test"][0], tmp_path / "decode")
    assert [row.metric for row in rows] == ["WER (greedy subwords)"]
    assert rows[0].counts.sentences == 6 and rows[0].counts.ref_units == 12  # 6 utterances of 2 words
    with pytest.raises(ValueError, match="omit --lexicon"):
        decode_data_dir(best, tiny_data["test"][0], tmp_path / "decode", lexicon_path=tiny_data["lexicon"]["de"])


def test_other_ranks_wait_for_rank_zeros_file_and_name_it_when_it_never_comes(tmp_path, monkeypatch):
    import threading

    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from asrprune.training.train import written_by_rank_zero

    init = tmp_path / "init.ckpt"
    assert written_by_rank_zero(init) == init  # rank 0 does not wait (it writes the file, or reports it missing)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    with pytest.raises(OSError, match="init.ckpt: rank 1 waited 0 s for global rank 0"):
        written_by_rank_zero(init, timeout_seconds=0.2)
    threading.Timer(0.3, init.write_bytes, args=(b"x",)).start()
    assert written_by_rank_zero(init, timeout_seconds=10) == init
