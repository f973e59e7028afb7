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
