"""benchmarks/seed_variance.py: statistics over training seeds, the transfer split's PER and ratio included."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "seed_variance.py"


@pytest.fixture(scope="module")
def seed_variance():
    spec = importlib.util.spec_from_file_location("seed_variance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(seed: int, test: dict, transfer: dict | None) -> dict:
    rates = {"PER": test, "WER": {lang: 2 * v for lang, v in test.items()}}
    if transfer is not None:
        rates["transfer PER"] = transfer
    return {"seed": seed, "rates": rates}


def test_the_transfer_ratio_is_mean_transfer_over_mean_test_per_seed(seed_variance):
    runs = [_run(0, {"de": 10.0, "fr": 20.0}, {"de": 12.0, "fr": 24.0}),
            _run(1, {"de": 10.0, "fr": 30.0}, {"de": 10.0, "fr": 30.0})]
    summary = seed_variance.summarise(runs)
    assert summary["PER"]["mean"]["mean"] == 17.5  # (15 + 20) / 2
    assert summary["transfer ratio"]["de"]["min"] == 1.0 and summary["transfer ratio"]["de"]["max"] == 1.2
    assert summary["transfer ratio"]["mean"]["mean"] == pytest.approx((36 / 30 + 40 / 40) / 2, abs=1e-3)
    table = seed_variance.markdown(runs, summary)
    assert "|transfer ratio mean ± std|1.100 ± 0.141|1.100 ± 0.141|1.100 ± 0.141|" in table
    assert "|PER seed 1|10.0|30.0|20.00|" in table


def test_without_the_transfer_split_only_test_metrics_are_summarised(seed_variance):
    runs = [_run(0, {"de": 10.0}, None), _run(1, {"de": 12.0}, {"de": 13.0})]
    assert sorted(seed_variance.summarise(runs)) == ["PER", "WER"]
