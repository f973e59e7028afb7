"""Does the AutoDFP search learn? Reward per episode of agent and random searches, per preserved ratio.

Reads the per-episode logs that ``asrprune autodfp`` writes beside each searched model
(``<name>.ckpt.episodes.jsonl``, named ``<method>_<ratio>_s<seed>``) from one or more folders, each given a label
(``LABEL=FOLDER``, e.g. the agent with AMC's credit assignment and the earlier one; the label names the agent's
searches, random search is the same in every folder and is read once), and writes:

- ``<out>.md``: per label, method, ratio and seed, the mean reward of the first and of the last ``--window``
  episodes (reward = -KL / KL of uniform L1 at the same budget: -1 is as good as uniform L1, 0 is the dense model)
  and the best plan's output KL (nats/frame); a search that learns raises its mean reward, random search does not;
- ``<out>.png``: per ratio, the reward per episode, a moving mean over ``--window`` episodes, averaged over seeds.

    python benchmarks/autodfp_learning_curves.py --runs episode=recipes/autodfp/exp/autodfp_credit \\
        terminal=recipes/autodfp/exp/autodfp --methods agent random --out benchmarks/results/autodfp_learning
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

import numpy as np

from asrprune.benchmarking.provenance import provenance

NAME = re.compile(r"(?P<method>agent|random)_(?P<ratio>[0-9.]+)_s(?P<seed>\d+)\.ckpt\.episodes\.jsonl$")


def read_searches(label: str, folder: Path, methods: list[str]) -> list[dict]:
    """Every search log of ``methods`` in ``folder``: name ("agent (<label>)" or "random"), ratio, seed and the
    rewards and KL per episode."""
    searches = []
    for path in sorted(folder.glob("*.episodes.jsonl")):
        match = NAME.search(path.name)
        if match is None or match["method"] not in methods:
            continue
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        name = f"agent ({label})" if match["method"] == "agent" else "random"
        searches.append({"name": name, "ratio": float(match["ratio"]),
                         "seed": int(match["seed"]), "rewards": [r["reward"] for r in records],
                         "distortions": [r["distortion"] for r in records]})
    return searches


def table(searches: list[dict], window: int) -> str:
    lines = ["| search | ratio | seed | episodes | "
             f"mean reward, first {window} | mean reward, last {window} | best KL |", "|---|---|---|---|---|---|---|"]
    for s in sorted(searches, key=lambda s: (-s["ratio"], s["name"], s["seed"])):
        rewards = s["rewards"]
        lines.append(f"| {s['name']} | {s['ratio']} | {s['seed']} | {len(rewards)} | "
                     f"{statistics.fmean(rewards[:window]):.3f} | {statistics.fmean(rewards[-window:]):.3f} | "
                     f"{min(s['distortions']):.5f} |")
    return "\n".join(lines) + "\n"


def plot(searches: list[dict], window: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    ratios = sorted({s["ratio"] for s in searches}, reverse=True)
    figure, axes = plt.subplots(1, len(ratios), figsize=(4.5 * len(ratios), 3.8), sharey=True, squeeze=False)
    for axis, ratio in zip(axes[0], ratios):
        groups: dict[str, list[list[float]]] = {}
        for s in searches:
            if s["ratio"] == ratio:
                groups.setdefault(s["name"], []).append(s["rewards"])
        for name, runs in sorted(groups.items()):
            length = min(len(r) for r in runs)
            mean = np.mean([r[:length] for r in runs], axis=0)
            moving = np.convolve(mean, np.ones(window) / window, mode="valid")
            axis.plot(np.arange(window, length + 1), moving, label=f"{name} ({len(runs)} seeds)")
        axis.axhline(-1.0, color="black", linestyle="--", linewidth=0.8)
        axis.set(title=f"preserved {ratio}", xlabel="episode", ylabel=f"reward, mean of {window} episodes")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, metavar="LABEL=FOLDER",
                        help="folders holding <method>_<ratio>_s<seed>.ckpt.episodes.jsonl, each with a label")
    parser.add_argument("--methods", nargs="+", default=["agent", "random"], choices=["agent", "random"])
    parser.add_argument("--window", type=int, default=30, help="episodes averaged at the start and the end")
    parser.add_argument("--other-load", default="none (reads logs)", help="what else ran (for the record)")
    parser.add_argument("--out", required=True, help="output prefix: OUT.md, OUT.png, OUT.json")
    args = parser.parse_args()
    searches = []
    for spec in args.runs:
        label, _, folder = spec.partition("=")
        if not folder:
            raise SystemExit(f"--runs {spec!r}: expected LABEL=FOLDER")
        found = read_searches(label, Path(folder), args.methods)
        if not found:
            raise SystemExit(f"--runs {spec!r}: no <method>_<ratio>_s<seed>.ckpt.episodes.jsonl in {folder}")
        seen = {(s["name"], s["ratio"], s["seed"]) for s in searches}
        searches += [s for s in found if (s["name"], s["ratio"], s["seed"]) not in seen]
    out = Path(args.out)
    text = table(searches, args.window)
    Path(f"{out}.md").write_text(text, encoding="utf-8")
    plot(searches, args.window, Path(f"{out}.png"))
    Path(f"{out}.json").write_text(json.dumps({"provenance": provenance(args.other_load), "window": args.window,
                                               "runs": args.runs, "table": text}, indent=2) + "\n",
                                   encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
