"""``asrprune dump-features``: fill the feature cache before training, with every CPU core.

Training reads filterbanks from ``data.feature_cache``; filling it up front with a process pool is faster than
filling it from a single loader worker during the first epochs, which also competes with the training step.
The speed factors and the cache folder come from the training config, so the dump matches what training reads.
"""
from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import torch
from tqdm import tqdm

from asrprune.cli_options import add_train_config, add_train_dev_dirs
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.kaldi_dir import Utterance
from asrprune.training.config import load_config
from asrprune.training.train import read_data_dirs

_cache: FeatureCache | None = None


def _init_worker(cache: FeatureCache) -> None:
    global _cache
    _cache = cache
    torch.set_num_threads(1)  # one process per core is the parallelism


def _extract(job: tuple[Utterance, float]) -> None:
    _cache.features(*job)


def dump_features(
    cache: FeatureCache, utterances: Sequence[Utterance], speed_factors: Sequence[float], jobs: int
) -> int:
    """Cache the filterbanks of every utterance at every speed factor; return the number of (utterance, factor)."""
    work = [(utt, factor) for utt in utterances for factor in speed_factors]
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(cache,)) as pool:
        for _ in tqdm(pool.map(_extract, work, chunksize=32), total=len(work), desc="dump features", unit="utt"):
            pass
    return len(work)


def run_cli(args: argparse.Namespace) -> None:
    config = load_config(args.config, args.set)
    root = config["data"]["feature_cache"]
    if root is None:
        print(f"{args.config}: data.feature_cache is not set; features are extracted during training, nothing to dump")
        return
    cache = FeatureCache(root, FbankConfig(config["model"]["num_mel_bins"]))
    train_utts, other_utts = read_data_dirs(args.train), read_data_dirs(args.dev)
    count = dump_features(cache, train_utts, config["data"]["speed_perturb"], args.jobs)
    count += dump_features(cache, other_utts, [1.0], args.jobs)
    print(f"{root}: {count} feature files present")


def register_cli(subparsers) -> None:
    """Add the ``dump-features`` sub-command."""
    parser = subparsers.add_parser(
        "dump-features",
        description="Extract and cache filterbanks for the training sets at every speed-perturbation factor and for "
        "the dev sets unperturbed, in parallel processes, into the config's data.feature_cache folder. Files already "
        "cached and newer than their audio are skipped, so the command is cheap to re-run.",
        epilog="example: asrprune dump-features --config conf/train.yaml --train data/train_de --dev data/dev_de",
    )
    add_train_config(parser, "training config (data.feature_cache, data.speed_perturb)", required=True)
    add_train_dev_dirs(parser, "dev data directories (unperturbed only)", dev_required=False)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    parser.set_defaults(func=run_cli)
