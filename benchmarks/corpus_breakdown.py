"""Where a model's phone errors on the synthetic corpus come from: PER per recording setting.

For each decoded set of a mini-recipe run (test, transfer, and optionally training subsets), every utterance is
matched with the settings its clip was made with (``asrprune.synth.corpus.planned_utterances``: room or dry,
noise kind and SNR, band-limiting, clipping, codec, voice variant, vocal-tract and intonation factors, rate
spans), and the corpus-level PER (summed edit errors / summed reference phones, jiwer) is printed per value of each
setting, with the utterance count. A setting whose PER is flat across its values does not decide the error rate;
train PER close to test PER means the model is under-fitted rather than tied to its training voices.

    python benchmarks/corpus_breakdown.py --recipe recipes/mini --exp exp/multi \\
        --sets test:data/test_{de,fr,es,it} transfer:data/transfer_{de,fr,es,it} --out breakdown.md

Each ``--sets`` item is ``SPLIT:DATA_DIR``; its decode is ``<exp>/decode_<basename of DATA_DIR>`` unless
``SPLIT:DATA_DIR:DECODE_DIR`` names it (a training subset decoded with ``asrprune decode``).
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

import jiwer

from asrprune.benchmarking.provenance import provenance
from asrprune.synth.corpus import planned_utterances

SETTINGS = {
    "room": lambda p: "dry" if p.room is None else "room",
    "noise kind": lambda p: p.degradation.kind,
    "SNR (dB, 10-wide bins)": lambda p: int(p.degradation.snr_db // 10) * 10,
    "band-limited": lambda p: p.channel.lowpass_hz is not None,
    "clipped": lambda p: p.channel.clip_db is not None,
    "codec": lambda p: p.channel.codec,
    "formant shift ratio (0.05 bins)": lambda p: round(p.speaker.shape.formant_shift_ratio * 20) / 20,
    "pitch range factor (0.2 bins)": lambda p: round(p.speaker.shape.pitch_range_factor * 5) / 5,
    "rate spans": lambda p: len(p.rate_spans),
    "voice variant": lambda p: p.speaker.variant,
}


def _table(path: Path) -> dict[str, str]:
    rows = (line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row[0]: (row[1] if len(row) > 1 else "") for row in rows}


def utterance_rows(corpora: Path, split: str, data_dir: Path, decode_dir: Path) -> list[dict]:
    """One row per utterance of ``data_dir``: its settings, edit errors and reference phones."""
    lang = data_dir.name.split("_")[1]  # <split>_<lang>[_anything]: test_de, transfer_de, train_de_subset
    by_clip = {Path(p.clip).stem: p for p in planned_utterances(corpora, lang)[split]}
    refs, hyps = _table(data_dir / "phones"), _table(decode_dir / "hyp.phones")
    rows = []
    for uttid, ref in refs.items():
        plan = by_clip[uttid.split("-", 1)[1]]  # Common Voice utterance ids: <client_id>-<clip stem>
        out = jiwer.process_words(ref, hyps.get(uttid) or "<empty>")
        rows.append({"lang": lang, "errors": out.substitutions + out.deletions + out.insertions,
                     "phones": len(ref.split()), **{name: get(plan) for name, get in SETTINGS.items()}})
    return rows


def breakdown(rows_by_set: dict[str, list[dict]]) -> str:
    """Markdown: per setting, one line per set with ``value: PER % (utterances)``."""
    lines = ["| setting | set | PER % by value (utterances) |", "|---|---|---|"]
    for name in ["all", *SETTINGS]:
        for label, rows in rows_by_set.items():
            groups: dict = collections.defaultdict(lambda: [0, 0, 0])
            for row in rows:
                group = groups["all" if name == "all" else row[name]]
                group[0] += row["errors"]
                group[1] += row["phones"]
                group[2] += 1
            cells = ", ".join(f"{value}: {100 * e / n:.1f} ({c})"
                              for value, (e, n, c) in sorted(groups.items(), key=lambda kv: str(kv[0])))
            lines.append(f"| {name} | {label} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/mini", help="the recipe directory (holds corpora/, data/, exp)")
    parser.add_argument("--exp", default="exp/multi", help="experiment directory, relative to --recipe")
    parser.add_argument("--sets", nargs="+", required=True, help="SPLIT:DATA_DIR[:DECODE_DIR], relative to --recipe")
    parser.add_argument("--other-load", default="not stated", help="what else ran (for the provenance record)")
    parser.add_argument("--out", required=True, help="markdown output")
    args = parser.parse_args()
    recipe = Path(args.recipe)
    rows_by_set: dict[str, list[dict]] = collections.defaultdict(list)
    for item in args.sets:
        split, data, *decode = item.split(":")
        decode_dir = recipe / decode[0] if decode else recipe / args.exp / f"decode_{Path(data).name}"
        rows_by_set[split] += utterance_rows(recipe / "corpora", split, recipe / data, decode_dir)
    record = provenance(args.other_load, checkpoints=[recipe / args.exp / "checkpoints" / "best.ckpt"])
    text = breakdown(dict(rows_by_set))
    header = (f"PER by recording setting (`benchmarks/corpus_breakdown.py`); commit {record['commit'][:10]}, "
              f"{record['date']}, {record['machine']}; other load: {args.other_load}.\n\n")
    Path(args.out).write_text(header + text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
