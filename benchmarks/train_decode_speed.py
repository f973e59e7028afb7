"""Training throughput, decoding real-time factor and peak memory of a model config, on this machine.

Measures, on the first utterances of the given data directories:
- training: utterances/s and audio seconds/s of full optimizer steps (forward, CTC, backward, AdamW), with the
  batches prepared beforehand so the figure is the model's cost, not the loader's;
- decoding: real-time factor of audio reading, feature extraction, the forward pass and greedy search, and with
  lexicon beam search added when a lexicon is given (wall seconds / audio seconds, one utterance at a time);
- peak resident memory of the process (ru_maxrss) and, on CUDA, peak allocated GPU memory.

Training runs in the precision the config's ``trainer.precision`` resolves to on this device, as ``asrprune train``
resolves it (``precision: auto``: bf16 autocast on CPUs with AVX512-BF16 or AMX and on bf16 GPUs); decoding in
float32, as ``asrprune decode``. The record carries its provenance (commit, command, machine, other load).

Writes a JSON record and prints a markdown table. Example (the mini recipe's model on its corpus):
    python benchmarks/train_decode_speed.py --config recipes/mini/conf/train.yaml \
        --data recipes/mini/data/train_de recipes/mini/data/train_fr --tokens recipes/mini/data/phones.txt \
        --lexicon recipes/mini/data/lang_de/lexicon.txt --out benchmarks/results/mini_cpu.json
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from asrprune.benchmarking.machine import machine_description
from asrprune.benchmarking.provenance import provenance
from asrprune.data.dataset import CTCDataset, collate
from asrprune.data.sampler import BucketBatchSampler
from asrprune.decoding.greedy import greedy_decode
from asrprune.decoding.lexicon_beam import LexiconBeamDecoder
from asrprune.model.conformer_ctc import ctc_loss
from asrprune.data.targets import load_target_units
from asrprune.phonology.lexicon import Lexicon
from asrprune.training.config import load_config
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import language_tokens, read_data_dirs, resolve_precision


def measure_training(module, batches, device, steps: int, warmup: int, autocast_dtype) -> dict:
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    module.train()
    utterances = audio = 0.0
    elapsed = 0.0
    for step in range(warmup + steps):
        batch = batches[step % len(batches)].to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            log_probs, out_lengths = module(batch)
            loss = ctc_loss(log_probs, out_lengths, batch.targets, batch.target_lengths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            elapsed += time.perf_counter() - started
            utterances += len(batch.uttids)
            audio += float(batch.feat_lengths.sum()) * 0.01
    return {
        "train_steps_timed": steps,
        "train_utterances_per_second": round(utterances / elapsed, 2),
        "train_audio_seconds_per_second": round(audio / elapsed, 2),
        "train_seconds_per_step": round(elapsed / steps, 4),
    }


def measure_decoding(module, dataset, device, utterances: int, beam) -> dict:
    module.eval()
    forward_seconds = beam_seconds = audio = 0.0
    with torch.inference_mode():
        for index in range(min(utterances, len(dataset))):
            started = time.perf_counter()
            batch = collate([dataset[index]]).to(device)  # reading audio and extracting features count too
            log_probs, out_lengths = module(batch)
            greedy_decode(log_probs, out_lengths)
            if device.type == "cuda":
                torch.cuda.synchronize()
            forward_seconds += time.perf_counter() - started
            if beam is not None:
                started = time.perf_counter()
                beam.decode(log_probs.float().cpu(), out_lengths.cpu())
                beam_seconds += time.perf_counter() - started
            audio += float(batch.feat_lengths.sum()) * 0.01
    record = {"decode_utterances": min(utterances, len(dataset)), "rtf_greedy": round(forward_seconds / audio, 4)}
    if beam is not None:
        record["rtf_lexicon_beam"] = round((forward_seconds + beam_seconds) / audio, 4)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="data directories to draw batches from")
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--lexicon", help="lexicon for the beam-search RTF (of the first data dir's language)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--decode-utterances", type=int, default=40)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--out", required=True, help="JSON output file")
    parser.add_argument("--other-load", default="not recorded", help="what else ran on the machine (for the record)")
    args = parser.parse_args()

    config = load_config(args.config, args.set)
    device = torch.device(args.device)
    units = load_target_units(args.tokens)
    utterances = read_data_dirs(args.data)
    per_language = language_tokens(utterances, units)
    module = CTCModule(units.tokens, per_language, config["model"], config["optim"], max_steps=1).to(device)
    dataset = CTCDataset(utterances, units.encode, module.model.languages)
    sampler = BucketBatchSampler(
        dataset.durations(), dataset.languages(), config["data"]["max_batch_seconds"],
        config["data"]["max_batch_size"], shuffle=True, seed=0,
    )
    batch_indices = list(sampler)[: args.train_steps + args.warmup_steps]
    batches = [collate([dataset[i] for i in indices]) for indices in batch_indices]
    precision = resolve_precision(config["trainer"].get("precision", "32-true"), device.type)
    autocast_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    record = {
        "config": args.config,
        "overrides": args.set,
        "data": args.data,
        "parameters": sum(p.numel() for p in module.parameters()),
        "device": args.device,
        "machine": machine_description(device),
        "precision": precision,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "mean_batch_utterances": round(sum(map(len, batch_indices)) / len(batch_indices), 1),
    }
    record.update(measure_training(module, batches, device, args.train_steps, args.warmup_steps, autocast_dtype))
    beam = None
    if args.lexicon:
        beam = LexiconBeamDecoder(units.tokens, Lexicon.load(args.lexicon))
    first_language = [u for u in utterances if u.lang == utterances[0].lang]
    decode_set = CTCDataset(first_language, units.encode, module.model.languages)
    record.update(measure_decoding(module, decode_set, device, args.decode_utterances, beam))
    record["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if device.type == "cuda":
        record["peak_gpu_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    record["provenance"] = provenance(args.other_load, device=args.device, config=config, data={"dirs": args.data})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print("| metric | value |\n|---|---|")
    for key, value in record.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
