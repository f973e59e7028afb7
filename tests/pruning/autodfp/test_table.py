"""``asrprune autodfp-table``'s summary over search seeds."""
from __future__ import annotations

import pytest

from asrprune.pruning.autodfp.table import seed_table


def _row(method: str, preserve: float, seed: int, mean_per: float) -> dict:
    return {"method": method, "metric": "params+flops", "preserve": preserve, "seed": seed, "mean_per": mean_per}


def test_seed_table_gives_mean_std_and_each_seed_per_method_and_ratio():
    rows = [_row("l1", 1.0, 0, 20.0), _row("agent", 0.5, 0, 30.0), _row("agent", 0.5, 2, 34.0),
            _row("agent", 0.5, 1, 32.0), _row("random", 0.5, 0, 31.0), _row("l1", 0.5, 0, 40.0)]
    lines = seed_table(rows).splitlines()
    assert len(lines) == 3  # header, rule, agent at 0.5: one-seed groups have no row
    assert lines[2] == "| agent | params+flops 0.5 | 3 | 32.00 ± 2.00 | 30.00-34.00 | 0: 30.00, 1: 32.00, 2: 34.00 |"


@pytest.mark.parametrize("rows", [[], [_row("agent", 0.5, 0, 30.0), _row("agent", 0.6, 0, 25.0)]])
def test_seed_table_is_none_without_a_group_of_several_seeds(rows):
    assert seed_table(rows) is None


def test_a_model_pruned_again_under_the_same_name_is_decoded_again(tmp_path, monkeypatch):
    import json

    from asrprune.benchmarking.provenance import file_sha256
    from asrprune.pruning.autodfp import table

    decoded = []

    def fake_decode(checkpoint, data, out):  # writes what decode_data_dir writes that the check reads
        decoded.append(checkpoint.read_bytes())
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text("[]")
        summary = {"provenance": {"checkpoints": {str(checkpoint): file_sha256(checkpoint)}}}
        (out / "decode_summary.json").write_text(json.dumps(summary))

    monkeypatch.setattr(table, "decode_data_dir", fake_decode)
    model = tmp_path / "agent_0.5_s0.ckpt"
    model.write_bytes(b"first search")
    for _ in range(2):
        table.decode_missing([model], tmp_path / "decode", tmp_path / "data", ["de"])
    assert decoded == [b"first search"]  # finished and of these weights: not redone
    model.write_bytes(b"second search")
    table.decode_missing([model], tmp_path / "decode", tmp_path / "data", ["de"])
    assert decoded == [b"first search", b"second search"]


def test_comparisons_pool_search_seeds_and_give_the_exact_difference(tmp_path, monkeypatch):
    import numpy as np

    from asrprune.pruning.autodfp import table
    from asrprune.scoring import bootstrap
    from asrprune.scoring.bootstrap import UtteranceErrors

    # errors per utterance (10 phones each) by model: the agent's seeds make 2 and 4 errors (mean 3), random
    # search's 5 and uniform L1's 6 on every utterance; merge equals L1. No random search at 0.6.
    errors = {"agent_0.5_s0": 2, "agent_0.5_s1": 4, "random_0.5_s0": 5, "l1_0.5": 6, "merge_0.5": 6,
              "agent_0.6_s0": 1, "l1_0.6": 1}

    def fake_errors(decode_dir, data_dir, metric):
        assert metric == "per" and data_dir.name == decode_dir.name
        ids = tuple(f"u{i}" for i in range(20))
        return UtteranceErrors(ids, np.full(20, errors[decode_dir.parent.name]), np.full(20, 10))

    monkeypatch.setattr(bootstrap, "utterance_errors", fake_errors)
    rows = [dict(_row(name.split("_")[0], float(name.split("_")[1]), int(name[-1]) if "_s" in name else 0, 0.0),
                 model=name) for name in errors]
    result = table.comparison_rows(rows, tmp_path / "decode", tmp_path / "data", ["de", "fr"], resamples=50)
    found = {(r["preserve"], r["method"], r["reference"]): r for r in result}
    assert set(found) == {(0.5, "agent", "random"), (0.5, "agent", "l1"), (0.5, "merge", "l1"),
                          (0.5, "agent", "merge"), (0.6, "agent", "l1")}
    agent_vs_random = found[0.5, "agent", "random"]
    assert agent_vs_random["seeds"] == [0, 1] and agent_vs_random["reference_seeds"] == [0]
    assert agent_vs_random["average"]["difference"] == pytest.approx(-20.0)  # (30 - 50) % PER
    assert agent_vs_random["average"]["p_not_better"] == 0.0
    assert found[0.5, "merge", "l1"]["average"]["difference"] == pytest.approx(0.0)
    markdown = table.comparison_table(result).splitlines()
    assert markdown[2].startswith("| params+flops 0.6 | agent | l1 |")  # largest ratio first
    assert "| params+flops 0.5 | agent | random | 2 vs 1 | -20.00 [-20.00, -20.00]* | 0.000 |" in markdown
