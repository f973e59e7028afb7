"""Where a pruned model's masks keep their weights: the kept fraction per kind of prunable tensor.

A method that ranks weights globally (one ranking over all prunable tensors) chooses how sparse each tensor gets,
and a ranking by magnitude favours tensors whose weights are large by construction (small fan-in). This script reads
the masks of finished ``asrprune prune run`` folders from their final exports (``<run>/exports/``:
``multilingual.pt`` with one mask per language, or one ``<lang>.pt`` per language for monolingual methods; the
``pathway_<lang>.pt`` extracts are skipped) and writes one Markdown table: per run, the fraction of weights kept in
each tensor kind (all blocks together; one column per prunable module path of a block,
``asrprune.model.conformer_layout.PRUNABLE_WEIGHTS``, the macaron feed-forward counted with the other), averaged
over the run's masks (languages), and overall. The file ends with its provenance record.

Example: cd recipes/pathways; python ../../benchmarks/mask_layer_density.py --runs exp/seed0/sparsity90/{omp,lap} \
    --other-load "nothing else" --out ../../benchmarks/results/pathways_seeds/mask_layer_density.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

from asrprune.benchmarking.provenance import provenance, provenance_markdown
from asrprune.model.conformer_layout import FFN, FFN_MACARON, PRUNABLE_WEIGHTS
from asrprune.pruning.masking.masked_models import read_masks

# Tensor kinds: the prunable module paths of a conformer block, the macaron feed-forward counted with the other one.
KINDS = tuple(dict.fromkeys(path.replace(FFN_MACARON, FFN) for path in PRUNABLE_WEIGHTS))


def kind_of(name: str) -> str:
    """The kind of the prunable weight ``name`` (``encoders.<i>.<module path>``, as the masks name it)."""
    kind = name.split(".", 2)[-1].replace(FFN_MACARON, FFN)
    if kind not in KINDS:
        raise ValueError(f"prunable tensor {name}: not one of the block paths {PRUNABLE_WEIGHTS}")
    return kind


def exports(run: Path) -> list[Path]:
    """The final exports holding ``run``'s masks (``asrprune prune run`` writes them last)."""
    found = sorted(p for p in (run / "exports").glob("*.pt") if not p.name.startswith("pathway_"))
    if not found:
        raise OSError(f"{run}/exports: no exported model (is the run finished?)")
    return found


def kept_fractions(run: Path) -> dict[str, float]:
    """Kept fraction per tensor kind (and ``"all"``), over every mask row of every export of ``run``."""
    kept: dict[str, float] = {}
    total: dict[str, int] = {}
    for checkpoint in exports(run):
        for name, mask in read_masks(checkpoint).items():
            try:
                kind = kind_of(name)
            except ValueError as error:
                raise ValueError(f"{checkpoint}: {error}") from error
            for key in (kind, "all"):
                kept[key] = kept.get(key, 0.0) + float(mask.sum())
                total[key] = total.get(key, 0) + mask.numel()
    return {key: kept[key] / total[key] for key in [*KINDS, "all"] if key in total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run folders of asrprune prune run")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    parser.add_argument("--out", required=True, help="Markdown file to write")
    args = parser.parse_args()
    head = ["run", *KINDS, "all"]
    lines = ["Kept fraction of the prunable weights per tensor kind (all blocks; mean over the run's masks).", "",
             "|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    for run in map(Path, args.runs):
        fractions = kept_fractions(run)
        lines.append(f"|{run}|" + "|".join(f"{fractions[k]:.3f}" if k in fractions else "-" for k in head[1:]) + "|")
    lines += ["", provenance_markdown(provenance(args.other_load))]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
