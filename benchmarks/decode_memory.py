"""Peak memory of ``asrprune decode`` on a data directory with one long clip among short ones, with and without the
padded-length bound on decoding batches (``BucketBatchSampler(max_padded_seconds=...)``).

Batches are cut from utterances sorted by duration, so the long clip comes last; bounded only by summed seconds
(the behaviour before), its batch also takes the longest short clips, every one padded to the long clip's length,
and self-attention memory grows with batch x frames^2. With the padded bound (longest x size <= max_batch_seconds,
the default now) the long clip is decoded almost alone.

Builds the data (noise audio) and a random-weight model with the mini recipe's encoder in a temporary folder, then
decodes it greedily in a fresh process per setting and records that process's peak RSS (ru_maxrss) and wall time.
Example:
    python benchmarks/decode_memory.py --out benchmarks/results/decode_memory.md
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asrprune.benchmarking.provenance import provenance, provenance_markdown
from asrprune.data.audio import write_wav
from asrprune.data.kaldi_dir import Utterance, write_data_dir
from asrprune.model.store import save_model
from asrprune.training.config import load_config
from asrprune.training.lightning_module import CTCModule

SETTINGS = {"sum bound only (before)": float("inf"), "padded bound (after)": None}
PHONES = ["a", "b", "d", "e"]


def make_data(root: Path, short: int, short_seconds: float, long_seconds: float) -> Path:
    """A one-language (de) data dir: ``short`` clips of ``short_seconds`` and one of ``long_seconds`` (noise)."""
    rng = np.random.default_rng(0)
    utts = []
    for i, seconds in enumerate([short_seconds] * short + [long_seconds]):
        wav = root / "wav" / f"u{i:03d}.wav"
        write_wav(wav, 0.1 * rng.standard_normal(int(16000 * seconds)).astype(np.float32))
        utts.append(Utterance(f"spk-u{i:03d}", str(wav), "a", "spk", "de", seconds, ("a", "b")))
    write_data_dir(root / "test_de", utts)
    return root / "test_de"


def make_model(path: Path, config_path: Path) -> None:
    """A random-weight model with ``config_path``'s encoder and a flat output layer over :data:`PHONES`."""
    model = load_config(config_path, ["model.output_layer.type=flat"])["model"]
    torch.manual_seed(0)
    module = CTCModule(["<blank>", "<unk>", *PHONES], {"de": PHONES}, model,
                       {"lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.1}, max_steps=1)
    save_model(module.stored(), path)


def child(args: argparse.Namespace) -> None:
    """Decode once (in this fresh process) and print its peak RSS and wall seconds as JSON."""
    from asrprune.decoding.decode_dir import decode_data_dir

    started = time.perf_counter()
    decode_data_dir(args.checkpoint, args.data, args.decode_out, max_batch_seconds=args.max_batch_seconds,
                    max_padded_seconds=SETTINGS[args.child])
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="markdown result (a .json beside it)")
    parser.add_argument("--config", default="recipes/mini/conf/train.yaml", help="model config (its encoder)")
    parser.add_argument("--short", type=int, default=55,
                        help="short clips (the first 40 fill one batch, the others join the long clip's)")
    parser.add_argument("--short-seconds", type=float, default=3.0)
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--max-batch-seconds", type=float, default=120.0, help="asrprune decode's default")
    parser.add_argument("--other-load", help="what else ran on the machine (for the record; required)")
    parser.add_argument("--child", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    for name in ("--checkpoint", "--data", "--decode-out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.other_load is None:
        parser.error("--other-load is required (what else ran on the machine, for the record)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp, args.short, args.short_seconds, args.long_seconds)
        make_model(tmp / "model.ckpt", Path(args.config))
        for setting in SETTINGS:
            command = [sys.executable, __file__, "--out", args.out, "--child", setting, "--checkpoint",
                       str(tmp / "model.ckpt"), "--data", str(data), "--decode-out", str(tmp / "decode"),
                       "--max-batch-seconds", str(args.max_batch_seconds)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[setting] = json.loads(output.strip().splitlines()[-1])
    record = {"config": args.config, "short_clips": args.short, "short_seconds": args.short_seconds,
              "long_seconds": args.long_seconds, "max_batch_seconds": args.max_batch_seconds,
              "threads": torch.get_num_threads(), "results": results, "provenance": provenance(args.other_load)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = [f"Decoding {args.short} clips of {args.short_seconds:g} s and one of {args.long_seconds:g} s "
             f"(max_batch_seconds {args.max_batch_seconds:g}, {args.config} encoder, random weights, greedy).",
             provenance_markdown(record["provenance"]), "",
             "| batching | peak RSS MiB | decode s |", "|---|---|---|"]
    lines += [f"| {s} | {r['peak_rss_mib']:.0f} | {r['seconds']:.1f} |" for s, r in results.items()]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
