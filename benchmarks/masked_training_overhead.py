"""Time per training step of masked models against the dense model, on the mini recipe's architecture.

One step = forward, CTC loss, backward, the pathway update rule (:func:`asrprune.model.masked_optimizer.masked_optimizer_step`,
as ``CTCModule.optimizer_step`` runs it) and AdamW, on a fixed batch of 60 s of audio (16 utterances x 3.75 s,
random filterbanks; the content does not change the cost). Variants:
- ``dense``: no masks.
- ``shared_fixed``: one shared mask at 70 % (OMP/IMP/LTH/LAP fine-tuning).
- ``pathways_fixed``: per-language masks at 70 % (static ASR pathways), batches cycling through the languages.
- ``dap_saliency``: per-language masks, dormant weights trainable, scores for the saliency criterion (its gradient
  read every step) and a mask re-evaluation every ``--interval`` steps (its time included, i.e. amortised).
Measurements alternate between variants in ``--rounds`` rounds of ``--steps`` steps, so that every variant sees the
same machine load (the machine may be shared with other jobs). Both wall-clock and CPU time (``time.process_time``,
all threads of this process) per step are recorded; on a machine shared with other jobs the CPU time is the stable
figure (wall time then mostly measures the other jobs). The median over rounds of the mean step time is reported
with the overhead relative to dense (goal: at most 15 %).

Example: OMP_NUM_THREADS=1 python benchmarks/masked_training_overhead.py --rounds 3 --steps 3 \
    --out benchmarks/results/masked_training_overhead.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import yaml

from asrprune.benchmarking.provenance import provenance
from asrprune.model.conformer_ctc import ctc_loss
from asrprune.model.mask_scores import topk_mask
from asrprune.model.masked_optimizer import masked_optimizer_step
from asrprune.phonology.phonological_vectors import phonological_vector
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.criteria import Saliency
from asrprune.pruning.masking.schedule import SparsitySchedule
from asrprune.training.lightning_module import CTCModule

LANGUAGES = ("de", "es", "fr", "it")
SPECS = {
    "dense": None,
    "shared_fixed": {"per_language": False},
    "pathways_fixed": {"per_language": True},
    "dap_saliency": {"per_language": True, "dormant_trainable": True, "scores": True},
}


def phone_tokens(count: int = 74) -> list[str]:
    """``count`` IPA phones that have phonological vectors (so the mini config's JoinAP layer can be built), the
    size of the mini recipe's inventory; which phones they are does not change the cost."""
    letters = "a b d e f h i j k l m n o p r s t u v w x y z ç ð ø ŋ œ ɐ ɑ ɔ ə ɛ ɡ ɣ ɪ ɲ ɾ ʁ ʃ ʊ ʎ ʏ ʒ β θ ʝ ɥ".split()
    phones = []
    for phone in letters + [p + "ː" for p in letters] + [p + "ʲ" for p in letters]:
        try:
            phonological_vector(phone)
        except ValueError:
            continue
        phones.append(phone)
    return phones[:count]


def build(config: dict, spec: dict | None) -> CTCModule:
    torch.manual_seed(0)
    tokens = ["<blank>"] + phone_tokens()
    model = {**config["model"], "masks": spec} if spec else dict(config["model"])
    module = CTCModule(tokens, {lang: tokens[1:] for lang in LANGUAGES}, model, config["optim"], max_steps=10_000)
    if spec:
        masks = module.model.masks
        for row in range(masks.state.num_masks):
            masks.set_row(row, {n: topk_mask(torch.rand(masks.weight(n).shape), 0.7) for n in masks.names})
    return module.train()


class Runner:
    """Steps one variant; keeps its optimizer (and DAP callback) across rounds."""

    def __init__(self, config: dict, name: str, interval: int):
        self.module = build(config, SPECS[name])
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=1e-4, weight_decay=1e-3)
        self.callback = None
        if name == "dap_saliency":
            self.callback = AdaptiveMasking(Saliency(), SparsitySchedule(0.7, 0.7), interval, stop_step=10**9)
        self.step_count = 0
        torch.manual_seed(1)
        self.feats = torch.randn(16, 375, 80)
        self.lengths = torch.full((16,), 375)
        self.targets = torch.randint(1, 75, (16, 40))
        self.target_lengths = torch.full((16,), 40)

    def step(self) -> None:
        lang = torch.full((16,), self.step_count % len(LANGUAGES))
        model = self.module.model

        def closure():
            self.optimizer.zero_grad()
            log_probs, out_lengths = model(self.feats, self.lengths, lang)
            ctc_loss(log_probs, out_lengths, self.targets, self.target_lengths).backward()
            if self.callback is not None:
                self.callback.criterion.before_optimizer_step(model.masks)
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), 5.0)

        if model.masks is None:
            self.optimizer.step(closure)
        else:
            masked_optimizer_step(model.masks, self.optimizer, lambda: self.optimizer.step(closure))
        self.step_count += 1
        if self.callback is not None and self.step_count % self.callback.interval == 0:
            self.callback.reevaluate(self.module, self.step_count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("recipes/mini/conf/train.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="steps per variant and round (after one warm-up step)")
    parser.add_argument("--interval", type=int, default=10, help="DAP: steps between mask re-evaluations")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    config["model"]["specaug"] = None  # the same work for every variant
    runners = {name: Runner(config, name, args.interval) for name in SPECS}
    for runner in runners.values():
        runner.step()  # warm-up
    times: dict[str, dict[str, list[float]]] = {"wall": {n: [] for n in SPECS}, "cpu": {n: [] for n in SPECS}}
    for _ in range(args.rounds):
        for name, runner in runners.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                runner.step()
            times["wall"][name].append((time.perf_counter() - wall) / args.steps)
            times["cpu"][name].append((time.process_time() - cpu) / args.steps)
    median = {clock: {n: statistics.median(v) for n, v in per.items()} for clock, per in times.items()}
    result = {
        "threads": torch.get_num_threads(),
        "batch": "16 x 3.75 s (60 s of audio), mini architecture, AdamW, CTC",
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "reevaluation_interval": args.interval,
        "load_average_at_end": os.getloadavg(),
        "seconds_per_step": {clock: {n: round(v, 4) for n, v in per.items()} for clock, per in median.items()},
        "seconds_per_step_each_round": {
            clock: {n: [round(v, 4) for v in values] for n, values in per.items()} for clock, per in times.items()
        },
        "overhead_vs_dense_percent": {
            clock: {n: round(100 * (v / per["dense"] - 1), 1) for n, v in per.items() if n != "dense"}
            for clock, per in median.items()
        },
        "provenance": provenance(args.other_load),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
