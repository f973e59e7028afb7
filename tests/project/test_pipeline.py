"""The whole pipeline through the command line, as the recipes run it, on a tiny synthetic corpus."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asrprune.scoring.result_table import read_results
from tests.helpers.tiny_experiment import TINY_OVERRIDES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory):
    """A recipe folder with a tiny de+es corpus synthesised and imported by the CLI."""
    root = tmp_path_factory.mktemp("recipe")
    sizes = ["--train-utts", "12", "--dev-utts", "4", "--test-utts", "4"]
    speakers = ["--train-speakers", "2", "--dev-speakers", "1", "--test-speakers", "1"]
    asrprune("synth", "--out", "corpora", "--langs", "de,es", *sizes, *speakers, cwd=root)
    for lang in ("de", "es"):
        asrprune("prep-commonvoice", "--release", "corpora/cv-corpus-synth-1.0", "--lang", lang, "--out", "data", cwd=root)
    return root


def asrprune(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "asrprune.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"asrprune {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def test_recipe_stages_train_decode_and_report(recipe_dir):
    """recipes/asr.sh stages 3-6: inventory, training, greedy + lexicon decoding, one results table."""
    train_opts = [arg for o in TINY_OVERRIDES + ["trainer.max_steps=3"] for arg in ("--train_opt", o)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("asrprune", path=env["PATH"]), "the asrprune console script is not installed"
    result = subprocess.run(
        [str(REPO / "recipes" / "asr.sh"), "--langs", "de es", "--exp", "exp/tiny", *train_opts,
         "--train_config", str(REPO / "recipes" / "mini" / "conf" / "train.yaml")],
        cwd=recipe_dir, capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    tokens = (recipe_dir / "data" / "phones_de_es.txt").read_text(encoding="utf-8").split("\n")
    assert tokens[:2] == ["<blank>", "<unk>"]
    table = (recipe_dir / "exp" / "tiny" / "RESULTS.md").read_text(encoding="utf-8")
    for lang in ("de", "es"):
        rows = {row.metric: row for row in read_results(recipe_dir / "exp" / "tiny" / f"decode_test_{lang}")}
        assert set(rows) == {"PER (greedy)", "WER (lexicon beam)"}
        assert rows["PER (greedy)"].counts.sentences == 4
        assert f"test_{lang}" in table
        summary = json.loads((recipe_dir / "exp" / "tiny" / f"decode_test_{lang}" / "decode_summary.json").read_text())
        assert summary["utterances"] == 4 and summary["real_time_factor"] > 0
        assert summary["provenance"]["data"].endswith(f"test_{lang}") and len(summary["provenance"]["checkpoints"]) == 1
        hyp_words = (recipe_dir / "exp" / "tiny" / f"decode_test_{lang}" / "hyp.text").read_text().splitlines()
        assert len(hyp_words) == 4
    # The mini config caches features; stage 4 dumped every speed factor of the training sets before training.
    for factor in ("0.9", "1", "1.1"):
        assert len(list((recipe_dir / "dump" / "fbank80" / f"sp{factor}" / "de").glob("*.npy"))) >= 12
    assert (recipe_dir / "exp" / "tiny" / "training_curves.png").stat().st_size > 10_000


def test_cli_errors_are_clear(recipe_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "asrprune.cli", "decode", "--checkpoint", str(tmp_path / "none.ckpt"),
         "--data", str(recipe_dir / "data" / "test_de"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "none.ckpt" in result.stderr


def test_make_subwords_cli(recipe_dir):
    out = asrprune("make-subwords", "--data", "data/train_de", "data/train_es", "--model-type", "char",
                   "--vocab-size", "60", "--out", "data/chars", cwd=recipe_dir)
    assert "from 24 transcripts" in out
    pieces = (recipe_dir / "data" / "chars.vocab").read_text(encoding="utf-8").splitlines()
    assert pieces[0].split("\t")[0] == "<blank>" and pieces[1].split("\t")[0] == "<unk>"
