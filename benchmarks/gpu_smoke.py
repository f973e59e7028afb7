"""GPU smoke test: the paths only a GPU exercises, in a few minutes on one GPU, without network.

1. dense training with the real GPU config (recipes/commonvoice/conf/train.yaml: 12 x 256 conformer, precision auto,
   its batch size) for a few dozen steps, interrupted and resumed;
2. greedy decoding of a test set on CUDA and on the CPU: the PERs must be equal;
3. DAP with the saliency criterion (per-language masks with scores) interrupted and resumed: the criterion's state
   is read from the checkpoint on the CPU and must meet CUDA gradients;
4. compact export of the pruned model and its decoding on CUDA, equal in PER to its checkpoint's;
5. benchmarks/train_decode_speed.py on the device (with warm-up steps): training throughput, decoding RTF and
   peak memory at the config's batch budget;
6. peak GPU memory (torch.cuda.max_memory_allocated) of parts 1-4, and the wall time of each part.

The corpus is generated (noise audio, random phone strings, tests/helpers/tiny_experiment.py), so the PERs are near 100 %
and only their equality is checked. Writes ``benchmarks/results/gpu_smoke_<device>.{md,json}`` and exits non-zero
when a check fails. Without a GPU it stops at once, saying so; ``--device cpu`` runs the same logic with a tiny
model and few steps, to check the script itself (not a GPU measurement). Examples:
    python benchmarks/gpu_smoke.py                  # on a GPU machine, < 8 min
    python benchmarks/gpu_smoke.py --device cpu     # logic check on the CPU, ~ a few minutes on 2 cores
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tiny corpus builder shared with the tests (tests.helpers)

from asrprune.benchmarking.machine import machine_description  # noqa: E402
from asrprune.decoding.decode_dir import decode_data_dir  # noqa: E402
from asrprune.model.store import save_model  # noqa: E402
from asrprune.pruning.masking.callbacks import AdaptiveMasking  # noqa: E402
from asrprune.pruning.masking.criteria import Saliency  # noqa: E402
from asrprune.pruning.masking.export import export_sparse  # noqa: E402
from asrprune.pruning.masking.masked_models import magnitude_masks, with_masks  # noqa: E402
from asrprune.pruning.masking.schedule import SparsitySchedule  # noqa: E402
from asrprune.training.config import load_config  # noqa: E402
from asrprune.training.lightning_module import CTCModule  # noqa: E402
from asrprune.training.train import train  # noqa: E402
from tests.helpers.tiny_experiment import TINY_OVERRIDES, InterruptAtStep, make_tiny_data  # noqa: E402

GPU_CONFIG = REPO / "recipes" / "commonvoice" / "conf" / "train.yaml"
# Per device: utterances per split and language, dense steps, DAP steps, config overrides beyond the GPU config.
# The generated clips last 1-1.5 s, so on CUDA max_batch_size is lifted for batches to reach the config's
# max_batch_seconds (800 s): the frames per batch, which activation memory follows, are the config's.
PLANS = {
    "cuda": {"utts": 400, "dense_steps": 40, "dap_steps": 30,
             "overrides": ["trainer.accelerator=gpu", "data.max_batch_size=1000"]},
    "cpu": {"utts": 8, "dense_steps": 6, "dap_steps": 6, "overrides": TINY_OVERRIDES},
}



def interrupted_then_resumed(run, stop: int) -> None:
    """``run(extra_callbacks)`` interrupted before step ``stop`` (it must exit), then run again to resume."""
    try:
        run([InterruptAtStep(stop)])
    except SystemExit:
        pass
    else:
        raise AssertionError(f"the run was not interrupted at step {stop}")
    run([])


def per(rows) -> float:
    """The greedy PER of ``decode_data_dir``'s result rows."""
    return next(row.counts.error_rate for row in rows if row.metric == "PER (greedy)")


def smoke(device: str, work: Path) -> dict:
    """Run parts 1-4 under ``work``; return the record (checks, PERs, timings)."""
    plan = PLANS[device]
    record: dict = {"device": device, "machine": machine_description(device), "torch": torch.__version__,
                    "seconds": {}, "checks": {}}
    tiny = make_tiny_data(work / "data", utts_per_split=plan["utts"])
    dense_steps, dap_steps = plan["dense_steps"], plan["dap_steps"]
    config = load_config(GPU_CONFIG, plan["overrides"] + [
        f"trainer.max_steps={dense_steps}", f"trainer.val_check_interval={dense_steps // 2}",
        f"data.feature_cache={work / 'dump'}", "data.num_workers=2", "trainer.log_every_n_steps=5",
    ])

    started = time.time()
    interrupted_then_resumed(
        lambda extra: train(config, tiny["train"], tiny["dev"], tiny["tokens"], work / "dense", extra),
        stop=dense_steps // 2 + 1,
    )
    summary = json.loads((work / "dense" / "train_summary.json").read_text())
    record["dense"] = {k: summary[k] for k in ("global_step", "precision", "device", "parameters")}
    record["checks"]["dense resumed to the last step"] = summary["global_step"] == dense_steps
    record["seconds"]["dense training"] = round(time.time() - started, 1)

    started = time.time()
    best = work / "dense" / "checkpoints" / "best.ckpt"
    test = tiny["test"][0]
    pers = {d: per(decode_data_dir(best, test, work / f"decode_{d}", device=d)) for d in (device, "cpu")}
    record["dense_per"] = pers
    record["checks"][f"{device} and cpu decoding give equal PER"] = pers[device] == pers["cpu"]
    record["seconds"]["decoding"] = round(time.time() - started, 1)

    started = time.time()
    dense = CTCModule.from_file(best)
    spec = {"per_language": True, "scores": True, "dormant_trainable": True}
    save_model(with_masks(dense, spec, magnitude_masks(with_masks(dense, {"per_language": False}), 0.3)).stored(),
               work / "dap_init.ckpt")
    dap_config = copy.deepcopy(config)
    dap_config["trainer"].update(max_steps=dap_steps, val_check_interval=dap_steps // 2)

    def dap(extra):
        masking = AdaptiveMasking(Saliency(), SparsitySchedule(0.3, 0.6, 0, dap_steps // 2), interval=2,
                                  stop_step=dap_steps - 2)
        train(dap_config, tiny["train"], tiny["dev"], None, work / "dap", [masking, *extra],
              init_checkpoint=work / "dap_init.ckpt")

    interrupted_then_resumed(dap, stop=dap_steps // 2 + 1)
    dap_last = work / "dap" / "checkpoints" / "last.ckpt"
    record["checks"]["DAP resumed to the last step"] = (
        torch.load(dap_last, map_location="cpu", weights_only=False)["global_step"] == dap_steps
    )
    record["seconds"]["DAP saliency"] = round(time.time() - started, 1)

    started = time.time()
    export = export_sparse(dap_last, work / "dap_export.pt")
    pruned = {"checkpoint": per(decode_data_dir(dap_last, test, work / "decode_dap", device=device)),
              "export": per(decode_data_dir(work / "dap_export.pt", test, work / "decode_export", device=device))}
    record["pruned_per"] = pruned
    record["export_bytes"] = export["bytes"]
    record["checks"][f"export decodes on {device} like its checkpoint"] = pruned["checkpoint"] == pruned["export"]
    record["seconds"]["export and decoding"] = round(time.time() - started, 1)
    if device == "cuda":
        record["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)

    started = time.time()
    speed = work / "speed.json"
    command = [sys.executable, str(REPO / "benchmarks" / "train_decode_speed.py"), "--config", str(GPU_CONFIG),
               "--data", *map(str, tiny["train"]), "--tokens", str(tiny["tokens"]), "--device", device,
               "--warmup-steps", "5", "--train-steps", "20", "--out", str(speed)]
    subprocess.run(command + [arg for o in plan["overrides"] for arg in ("--set", o)], check=True)
    record["speed"] = json.loads(speed.read_text())
    record["seconds"]["speed benchmark"] = round(time.time() - started, 1)
    return record


def write_report(record: dict, out: Path) -> None:
    """``out`` (.md) and the record beside it (.json)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = [f"GPU smoke test on {record['device']} ({record['machine']}, torch {record['torch']}), "
             f"command `{record['command']}`, {record['total_seconds']} s in all.", "",
             "| check | result |", "|---|---|"]
    lines += [f"| {name} | {'ok' if ok else 'FAILED'} |" for name, ok in record["checks"].items()]
    lines += ["", "| part | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in record["seconds"].items()]
    lines += ["", f"dense: {record['dense']}; PER {record['dense_per']}; pruned PER {record['pruned_per']}"]
    if "peak_gpu_memory_gib" in record:
        lines.append(f"peak GPU memory of training, DAP and decoding: {record['peak_gpu_memory_gib']} GiB")
    lines.append(f"speed benchmark: {json.dumps(record['speed'])}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=sorted(PLANS), default="cuda")
    parser.add_argument("--out", help="report (default benchmarks/results/gpu_smoke_<device>.md)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA GPU is visible (torch.cuda.is_available() is False); nothing was run. "
                 "Use --device cpu to check the script's logic on a tiny model.")
    out = Path(args.out or REPO / "benchmarks" / "results" / f"gpu_smoke_{args.device}.md")
    started = time.time()
    with tempfile.TemporaryDirectory() as work:
        record = smoke(args.device, Path(work))
    record["command"] = " ".join(["python", *sys.argv])
    record["total_seconds"] = round(time.time() - started, 1)
    write_report(record, out)
    failed = [name for name, ok in record["checks"].items() if not ok]
    if failed:
        sys.exit(f"gpu_smoke: failed: {'; '.join(failed)}")


if __name__ == "__main__":
    main()
