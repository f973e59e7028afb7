"""benchmarks/autodfp_reconstruction.py runs end to end on the session's tiny trained model and dev data."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("autodfp_reconstruction",
                                              REPO / "benchmarks" / "autodfp_reconstruction.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def test_the_benchmark_writes_a_table_of_every_group_and_mode_with_provenance(tiny_model, tiny_data, tmp_path):
    out = tmp_path / "recon"
    record = benchmark.main(["--checkpoint", str(tiny_model.checkpoint), "--data", *map(str, tiny_data["dev"]),
                             "--preserve", "0.5", "--max-utts", "2", "--utterances", "2",
                             "--units", "ffn", "heads", "all", "budget", "--out", str(out)])
    rows = record["rows"]
    assert rows[0]["units"] == "dense" and rows[0]["kl"] == 0.0
    assert [(r["units"], r["mode"]) for r in rows[1:]] == [(g, m) for g in ("ffn", "heads", "all", "budget")
                                                           for m in ("none", "fold", "lstsq")]
    assert record["utterances"] == 2 * len(tiny_data["dev"])
    for r in rows[1:]:
        assert r["params_ratio"] < 1 and r["kl"] >= 0 and set(r["per"]) >= {"all"}
    ffn = next(r for r in rows if r["units"] == "ffn")
    assert ffn["macs_ratio"] < 1 and all(w == width for name, w in ffn["widths"].items()
                                         if not name.endswith(("ffn", "ffn_macaron"))
                                         for width in [rows[0]["widths"][name]])
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["rows"] == rows and {"commit", "command", "date", "machine"} <= set(saved["provenance"])
    table = out.with_suffix(".md").read_text()
    assert "| PER none | PER fold | PER lstsq |" in table and table.count("\n| 0.5 |") == 4


def test_a_mixed_spec_applies_its_mode_per_unit_kind(tiny_model, tiny_data, tmp_path, capsys):
    record = benchmark.main(["--checkpoint", str(tiny_model.checkpoint), "--data", *map(str, tiny_data["dev"]),
                             "--preserve", "0.5", "--max-utts", "2", "--utterances", "2", "--units", "conv",
                             "--modes", "none", "lstsq,conv=none", "--out", str(tmp_path / "mix")])
    plain, mixed = record["rows"][1:]
    assert mixed["mode"] == "lstsq,conv=none" and mixed["kl"] == plain["kl"]  # conv units: removal in both
    assert "| PER none | PER lstsq,conv=none |" in (tmp_path / "mix.md").read_text()
    with pytest.raises(SystemExit):
        benchmark.main(["--checkpoint", "x", "--data", "y", "--modes", "lstsq,conv=lsq", "--out", "z"])
    assert "reconstruction mode 'lsq'" in capsys.readouterr().err
