"""recipes/pathways/run.sh's seed loop, through --dry_run (which installs and runs nothing): the runs planned per
seed, the headline sparsities over every seed, finished runs (result.json present) skipped."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

RUN_SH = Path(__file__).resolve().parents[3] / "recipes" / "pathways" / "run.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("awk") is None,
                                reason="needs bash and awk")


def _dry_run(exp: Path, *options: str) -> list[str]:
    result = subprocess.run(
        ["bash", str(RUN_SH), "--dry_run", "true", "--exp", str(exp), "--stage", "1", "--stop_stage", "1",
         "--methods", "omp lap", "--dap_compare_runs", "middle:magnitude", *options],
        capture_output=True, text=True, check=True, timeout=60)
    return result.stdout.splitlines()


def _planned(lines: list[str]) -> list[tuple[str, str, str]]:
    """(method or dap init:criterion, sparsity, seed) of every 'would run' line."""
    runs = []
    for line in lines:
        if line.startswith("would run: asrprune prune run"):
            words = line.split()
            method = words[words.index("--method") + 1]
            if method == "dap":
                method = f"dap_{words[words.index('--init') + 1]}_{words[words.index('--criterion') + 1]}"
            sparsity = words[words.index("--sparsity") + 1] if "--sparsity" in words else "0"
            seed = next(w for w in words if w.startswith("--set=seed=")).split("=")[-1]
            exp = words[words.index("--exp") + 1]
            assert exp.endswith(f"/seed{seed}")
            runs.append((method, sparsity, seed))
    return runs


def test_every_seed_at_the_headline_sparsities(tmp_path):
    runs = _planned(_dry_run(tmp_path / "exp", "--seeds", "0 1 2", "--sparsities", "0.7 0.5 0.9"))
    assert runs.count(("dense", "0", "0")) == 1 and len([r for r in runs if r[0] == "dense"]) == 1
    for seed in "012":
        for s in ("0.7", "0.9"):
            assert {m for m, sp, se in runs if sp == s and se == seed} >= {"omp", "lap", "dap_middle_saliency"}
        assert ("dap_middle_magnitude", "0.7", seed) in runs  # the DAP comparison runs at 70 % too
        assert ("dap_middle_magnitude", "0.9", seed) not in runs
    assert {se for m, sp, se in runs if sp == "0.5"} == {"0"}  # 50 %: the first seed only
    assert len(runs) == len(set(runs))


def test_finished_runs_are_skipped(tmp_path):
    exp = tmp_path / "exp"
    finished = [exp / "seed0/dense", exp / "seed0/sparsity70/omp", exp / "seed0/sparsity70/lap",
                exp / "seed0/sparsity70/dap_middle_saliency", exp / "seed0/sparsity70/dap_middle_magnitude",
                exp / "seed1/sparsity70/omp"]
    for folder in finished:
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({}))
    (exp / "seed1/sparsity70/lap").mkdir(parents=True)  # started, not finished: runs again (resumes its stages)
    lines = _dry_run(exp, "--seeds", "0 1", "--sparsities", "0.7")
    runs = _planned(lines)
    assert [r for r in runs if r[2] == "0"] == []  # seed 0 complete: nothing to run
    assert sorted(runs) == [("dap_middle_magnitude", "0.7", "1"), ("dap_middle_saliency", "0.7", "1"),
                            ("lap", "0.7", "1")]
    assert sum(line.startswith("skip:") for line in lines) == 6


def test_bad_seeds_are_refused(tmp_path):
    result = subprocess.run(["bash", str(RUN_SH), "--dry_run", "true", "--seeds", "0 x"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "--seeds" in result.stderr
