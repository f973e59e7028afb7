"""Why zero-shot PER differs between output layers: accuracy on phones seen vs unseen in training.

For the crosslingual recipe's zero-shot decodes of one new language, aligns every test reference phone sequence with
the greedy hypothesis (jiwer) and counts, separately for phones in the training inventory and phones new to the
model, how many reference phones were recognised correctly, and how many hypothesis phones are new phones. The flat
layer can never emit a new phone; a JoinAP layer can, from its phonological features.

Example (after recipes/crosslingual/run.sh):
  python benchmarks/zero_shot_unseen_phones.py --recipe recipes/crosslingual --lang pl --other-load "nothing else" \
      --out benchmarks/results/zero_shot_unseen_phones_pl.md
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import jiwer

from asrprune.benchmarking.provenance import provenance, provenance_markdown

LAYERS = ("flat", "joinap_linear", "joinap_nonlinear")


def read_table(path: Path) -> dict[str, list[str]]:
    """uttid -> tokens, from a Kaldi-style 'uttid tok tok ...' file."""
    rows = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row[0]: row[1:] for row in rows}


def seen_unseen_counts(refs: dict, hyps: dict, seen: set[str]) -> dict[str, Counter]:
    """Reference phones and correct ones per kind ('seen'/'unseen'), and emitted hypothesis phones per kind."""
    counts = {"ref": Counter(), "correct": Counter(), "emitted": Counter()}
    for uttid, ref in refs.items():
        hyp = hyps.get(uttid, [])
        counts["emitted"].update("seen" if token in seen else "unseen" for token in hyp)
        alignment = jiwer.process_words(" ".join(ref), " ".join(hyp) or "<empty>").alignments[0]
        for chunk in alignment:
            for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                kind = "seen" if ref[i] in seen else "unseen"
                counts["ref"][kind] += 1
                counts["correct"][kind] += chunk.type == "equal"
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/crosslingual"))
    parser.add_argument("--lang", default="pl")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    args = parser.parse_args()
    seen = set((args.recipe / "data" / "phones_seen.txt").read_text(encoding="utf-8").split())
    refs = read_table(args.recipe / "data" / f"test_{args.lang}" / "phones")
    new_phones = sorted({token for ref in refs.values() for token in ref} - seen)
    lines = [
        f"# Zero-shot {args.lang}: seen vs unseen phones ({args.recipe}, test_{args.lang}, greedy decoding)", "",
        f"Phones of test_{args.lang} not in the training inventory: {' '.join(new_phones)}", "",
        provenance_markdown(provenance(args.other_load, checkpoints=sorted(
            (args.recipe / "exp").glob(f"multi_*/zero_shot_{args.lang}.ckpt")))), "",
        "| output layer | seen ref phones | correct | unseen ref phones | correct | hyp phones that are unseen |",
        "|---|---|---|---|---|---|",
    ]
    for layer in LAYERS:
        hyp_path = args.recipe / "exp" / f"multi_{layer}" / f"decode_zero_shot_test_{args.lang}" / "hyp.phones"
        if not hyp_path.exists():
            continue
        c = seen_unseen_counts(refs, read_table(hyp_path), seen)
        lines.append(
            f"| {layer} | {c['ref']['seen']} | {100 * c['correct']['seen'] / c['ref']['seen']:.1f}% "
            f"| {c['ref']['unseen']} | {100 * c['correct']['unseen'] / max(c['ref']['unseen'], 1):.1f}% "
            f"| {c['emitted']['unseen']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
