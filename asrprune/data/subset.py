"""``asrprune subset-data``: a random subset of a data directory (ESPnet's ``utils/subset_data_dir.sh``)."""
from __future__ import annotations

import argparse
import random

from asrprune.cli_options import add_data_dir, add_out, add_seed
from asrprune.data.kaldi_dir import read_data_dir, write_data_dir


def run_cli(args: argparse.Namespace) -> None:
    utterances = read_data_dir(args.data)
    if args.utts > len(utterances):
        raise ValueError(f"{args.data}: asked for {args.utts} utterances, it has {len(utterances)}")
    chosen = random.Random(args.seed).sample(utterances, args.utts)
    write_data_dir(args.out, chosen)
    hours = sum(u.duration for u in chosen) / 3600
    print(f"{args.out}: {len(chosen)} of {len(utterances)} utterances ({hours * 60:.1f} min), seed {args.seed}")


def register_cli(subparsers) -> None:
    """Add the ``subset-data`` sub-command."""
    parser = subparsers.add_parser(
        "subset-data",
        description="Pick N utterances of a Kaldi data directory at random (deterministic for --seed) and write them "
        "as a new data directory; the audio files are shared, not copied.",
        epilog="example: asrprune subset-data --data data/train_pl --utts 200 --out data/train_pl_fewshot",
    )
    add_data_dir(parser, "the data directory to pick from")
    parser.add_argument("--utts", type=int, required=True, help="number of utterances to keep")
    add_seed(parser, "random seed of the pick")
    add_out(parser, "data directory to write")
    parser.set_defaults(func=run_cli)
