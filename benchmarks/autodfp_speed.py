"""CPU decoding speed of a dense model against structurally pruned ones (asrprune autodfp), on one thread.

For each model, the test utterances of the given data directories are run through the model (CMVN, encoder, output
layer, log-softmax) and greedy CTC decoding in batches of ``--batch`` utterances, sorted by length; filterbanks are
extracted once beforehand and excluded (they cost the same for every model). The models are timed interleaved,
``--repeats`` times each, and the median is reported, so a machine shared with other jobs slows all models alike.
Also reported: the speed-up including feature extraction, estimated from the measured extraction time, and with
``--latency-table`` (an ``asrprune autodfp`` latency table of the dense model) the speed-up that table predicts for
each model's widths, so that the table's additive model is checked against whole-model decoding.

Example: OMP_NUM_THREADS=1 python benchmarks/autodfp_speed.py --dense recipes/autodfp/exp/autodfp/dense.ckpt \
    --pruned recipes/autodfp/exp/autodfp/agent_0.5.ckpt recipes/autodfp/exp/autodfp/l1_0.5.ckpt \
    --data recipes/mini/data/test_de recipes/mini/data/test_fr --out benchmarks/results/autodfp_speed
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from asrprune.benchmarking.machine import machine_description
from asrprune.benchmarking.provenance import provenance
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.kaldi_dir import read_data_dir
from asrprune.decoding.greedy import greedy_decode
from asrprune.model.conformer_layout import encoder_layers
from asrprune.model.store import load_model
from asrprune.pruning.autodfp.latency import LatencyTable


def load_batches(data_dirs: list[str], languages: list[str], batch: int) -> tuple[list, float, float]:
    """Padded batches (feats, lengths, lang_ids) of every utterance, the audio seconds, and the seconds spent
    extracting the filterbanks."""
    cache = FeatureCache(None, FbankConfig())
    items = []
    started = time.perf_counter()
    audio = 0.0
    for d in data_dirs:
        for utt in read_data_dir(d):
            items.append((cache.features(utt), languages.index(utt.lang)))
            audio += utt.duration
    extraction = time.perf_counter() - started
    items.sort(key=lambda item: len(item[0]))
    batches = []
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        feats = torch.nn.utils.rnn.pad_sequence([f for f, _ in chunk], batch_first=True)
        batches.append((feats, torch.tensor([len(f) for f, _ in chunk]), torch.tensor([lang for _, lang in chunk])))
    return batches, audio, extraction


def decode_seconds(model, batches: list) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        for feats, lengths, lang_ids in batches:
            log_probs, out_lengths = model(feats, lengths, lang_ids)
            greedy_decode(log_probs, out_lengths)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dense", required=True)
    parser.add_argument("--pruned", nargs="+", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="test data directories")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", required=True, help="output path without suffix (.json and .md are written)")
    parser.add_argument("--other-load", default="not recorded", help="what else ran on the machine (for the record)")
    parser.add_argument("--latency-table", help="latency table of the dense model: add its predicted speed-ups")
    args = parser.parse_args()

    torch.set_num_threads(1)
    paths = [args.dense] + args.pruned
    models = {p: load_model(p).model for p in paths}
    batches, audio, extraction = load_batches(args.data, models[args.dense].languages, args.batch)
    for model in models.values():  # warm-up
        decode_seconds(model, batches[:2])
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(args.repeats):
        for p in paths:
            times[p].append(decode_seconds(models[p], batches))
    dense = statistics.median(times[args.dense])
    table = (LatencyTable.load(args.latency_table, encoder_layers(models[args.dense]), multiple=None)
             if args.latency_table else None)
    rows = []
    for p in paths:
        median = statistics.median(times[p])
        rows.append({
            "checkpoint": p, "params": sum(q.numel() for q in models[p].parameters()),
            "median_seconds": round(median, 3), "all_seconds": [round(t, 3) for t in times[p]],
            "real_time_factor": round(median / audio, 5), "speedup": round(dense / median, 2),
            "speedup_with_features": round((dense + extraction) / (median + extraction), 2),
        })
        if table is not None:
            rows[-1]["predicted_speedup"] = round(table.predict(encoder_layers(models[args.dense]))
                                                  / table.predict(encoder_layers(models[p])), 2)
    result = {"machine": machine_description(), "threads": 1, "audio_seconds": round(audio, 1),
              "utterances": sum(len(b[1]) for b in batches), "feature_extraction_seconds": round(extraction, 3),
              "batch": args.batch, "repeats": args.repeats, "data": args.data, "models": rows,
              "latency_table": args.latency_table,
              "provenance": provenance(args.other_load, checkpoints=paths, data=args.data)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    lines = [f"CPU decoding speed, 1 thread, {result['utterances']} utterances ({audio:.0f} s of audio), "
             f"{result['machine']}; model + greedy decoding, median of {args.repeats} interleaved runs; "
             f"feature extraction ({extraction:.2f} s, the same for every model) excluded, then included. "
             f"Other load: {args.other_load}. Command and commit: the .json's provenance.", "",
             "| checkpoint | params | seconds | RTF | speed-up | speed-up incl. features |"
             + (" predicted by the latency table |" if table else ""), "|---|---|---|---|---|---|"
             + ("---|" if table else "")]
    for r in rows:
        lines.append(f"| {r['checkpoint']} | {r['params']} | {r['median_seconds']:.2f} "
                     f"| {r['real_time_factor']:.4f} | {r['speedup']:.2f}x | {r['speedup_with_features']:.2f}x |"
                     + (f" {r['predicted_speedup']:.2f}x |" if table else ""))
    Path(f"{out}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
