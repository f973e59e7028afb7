"""The dev study's table (asrprune.pruning.masking.report.dev_study_table) from fake variant folders."""
from __future__ import annotations

import json
from pathlib import Path

from asrprune.pruning.masking.report import dev_study_table


def _run(exp: Path, folder: str, per: dict, commit: str, overlap: list | None = None) -> None:
    run = exp / folder / "sparsity70" / "dap_middle_saliency"
    run.mkdir(parents=True)
    masks = {"overlap": overlap} if overlap else None
    (run / "result.json").write_text(json.dumps({"per": per, "wer": {k: 2 * v for k, v in per.items()}, "steps": 160,
                                                 "multilingual": overlap is not None, "masks": masks}))
    (run / "train_summary.json").write_text(json.dumps({"provenance": {"commit": commit * 40}}))


def test_rows_per_variant_and_seed_and_mean_std_over_seeds(tmp_path):
    _run(tmp_path, "dap_saliency", {"de": 20.0, "fr": 10.0}, "a", [[1, 0.7], [0.7, 1]])
    _run(tmp_path, "dap_saliency_seed1", {"de": 22.0, "fr": 12.0}, "b", [[1, 0.9], [0.9, 1]])
    _run(tmp_path, "dap_saliency_global", {"de": 18.0, "fr": 9.0}, "c")    # a longer name, not a seed of the first
    _run(tmp_path, "dap_saliency_cap", {"de": 30.0, "fr": 30.0}, "d")       # a variant not asked for
    table = dev_study_table(tmp_path, ["dap_saliency", "dap_saliency_global"])
    rows = [line for line in table.splitlines() if line.startswith("| dap")]
    assert rows == [
        "| dap_saliency | 0 | 20.0 | 10.0 | 15.00 | 30.00 | 160 | 0.700 | aaaaaaa |",
        "| dap_saliency | 1 | 22.0 | 12.0 | 17.00 | 34.00 | 160 | 0.900 | bbbbbbb |",
        "| dap_saliency_global | 0 | 18.0 | 9.0 | 13.50 | 27.00 | 160 | - | ccccccc |",
        "| dap_saliency | 2 | 16.00 ± 1.41 |",
    ]


def test_no_finished_variant_gives_no_table(tmp_path):
    assert dev_study_table(tmp_path, ["dap_saliency"]) == ""
