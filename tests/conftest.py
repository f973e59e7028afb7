"""Session-wide fixtures: one tiny two-language corpus and one tiny model trained on it, built once for the suite.

Both are shared read-only: a test that writes (a run resumed in place, a file next to the checkpoint) copies them to
its own ``tmp_path`` first. Each fixture checks at the end of the session that nothing under its folder changed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from asrprune.training.config import load_config
from asrprune.training.train import train
from tests.helpers.tiny_experiment import TINY_OVERRIDES, make_tiny_data

TINY_MODEL_STEPS = 4


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _assert_unchanged(root: Path, before: dict[str, tuple[int, int]]) -> None:
    after = _snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test wrote into the shared {root}: {changed[:5]}"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """The tiny de + fr corpus of :func:`tests.helpers.tiny_experiment.make_tiny_data` (6 utterances per split and
    language, noise audio, random phone strings): its dict of paths (``train``, ``dev``, ``test``: lists of data dirs
    in language order; ``tokens``: phones.txt; ``lexicon``: per language); all of it in ``tokens.parent``."""
    root = tmp_path_factory.mktemp("tiny_data")
    paths = make_tiny_data(root)
    before = _snapshot(root)
    yield paths
    _assert_unchanged(root, before)


@dataclasses.dataclass(frozen=True)
class TinyModel:
    """A finished training run: its best ``checkpoint``, its experiment folder ``exp`` (checkpoints/, cmvn.pt,
    train_summary.json) and the ``config`` it was trained with (``trainer.max_steps`` = ``steps``)."""

    checkpoint: Path
    exp: Path
    config: dict
    steps: int


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory) -> TinyModel:
    """The tiny config (TINY_OVERRIDES: one conformer block of width 32, flat output layer) trained for
    TINY_MODEL_STEPS steps on :func:`tiny_data` through :func:`asrprune.training.train.train`, validated and
    checkpointed every 2 steps."""
    exp = tmp_path_factory.mktemp("tiny_model") / "exp"
    config = load_config(None, TINY_OVERRIDES + [f"trainer.max_steps={TINY_MODEL_STEPS}"])
    checkpoint = train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp)
    before = _snapshot(exp)
    yield TinyModel(checkpoint, exp, config, TINY_MODEL_STEPS)
    _assert_unchanged(exp, before)
