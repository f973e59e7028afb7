"""Where does AutoDFP's reconstruction help? Uniform pruning per unit type x reconstruction mode, dev PER and
output KL, on the CPU.

For each preserved ratio r (``--preserve``) and each unit group (``--units``) the model is pruned uniformly,
keeping the fraction r of the units (by L1 importance, at least the layer minimum of
:func:`asrprune.pruning.autodfp.budget.minimum_widths`) in every layer of that group and leaving the others dense:

- ``subsampling``, ``ffn``, ``heads``, ``conv``: only the layers of that unit kind;
- ``all``: every prunable layer, keep fraction r;
- ``budget``: the ``asrprune autodfp --method l1/merge`` baseline widths at preserved ratio r of the whole model's
  parameters and MACs (``params+flops``; the setting in which "uniform + merging" was worse than uniform L1).

Each plan is applied with every reconstruction mode (``--modes``: ``none`` = plain removal, ``fold`` = the
Neuron-Merging-like fold, ``lstsq`` = the least-squares refit of the next layer on synthetic inputs; see
:mod:`asrprune.pruning.autodfp.reconstruction`; or a mix per unit kind such as ``lstsq,conv=none``), at strength
1. Every pruned model is scored by

- dev PER (greedy CTC) on the given data directories (``--max-utts`` per directory, evenly spread, to keep it
  short), pooled over the languages and per language;
- the data-free output distortion: mean per-frame KL(dense || pruned) of the CTC posteriors on synthetic
  filterbanks drawn from the model's CMVN statistics (the AutoDFP search's reward, ``--utterances`` inputs).

Writes ``<out>.json`` (every row, the provenance record: commit, command, date, machine, checkpoint hash, data) and
``<out>.md`` (one row per (r, group), the modes side by side). Phone (not subword) models only.

Example (2 threads, ~1 min per 100 utterances per pruned model on the mini model):
    python benchmarks/autodfp_reconstruction.py --checkpoint recipes/mini/exp/multi/checkpoints/best.ckpt \\
        --data recipes/mini/data/dev_{de,fr,es,it} --max-utts 100 --preserve 0.6 0.5 \\
        --other-load "nothing else running" --out benchmarks/results/autodfp_reconstruction_mini
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from asrprune.benchmarking.provenance import provenance
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.kaldi_dir import read_data_dir
from asrprune.data.targets import SUBWORD
from asrprune.decoding.greedy import greedy_decode
from asrprune.model.conformer_layout import KINDS, encoder_layers
from asrprune.model.store import load_model
from asrprune.pruning.autodfp.baselines import uniform_widths
from asrprune.pruning.autodfp.budget import Budget, minimum_widths
from asrprune.pruning.autodfp.distortion import OutputDistortion, synthetic_features
from asrprune.pruning.autodfp.prune import LayerPlan, prune_module
from asrprune.pruning.autodfp.reconstruction import MODES, LstsqContext, reconstruction_modes
from asrprune.scoring.error_rates import ErrorCounts, score_phones
from asrprune.training.lightning_module import CTCModule

GROUPS = (*KINDS, "all", "budget")


def spread(items: list, count: int) -> list:
    """``count`` items evenly spread over ``items`` (all of them if ``count`` <= 0 or larger)."""
    if count <= 0 or count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def load_dev(data_dirs: list[str], languages: list[str], num_mel_bins: int, max_utts: int, batch: int) -> list:
    """Batches (feats, lengths, lang_ids, reference phone lists, languages) sorted by length."""
    cache = FeatureCache(None, FbankConfig(num_mel_bins))
    items = []
    for d in data_dirs:
        for utt in spread(read_data_dir(d), max_utts):
            if utt.lang not in languages:
                raise ValueError(f"{d}: language {utt.lang!r} is not one of the model's {languages}")
            items.append((cache.features(utt), languages.index(utt.lang), list(utt.phones), utt.lang))
    items.sort(key=lambda item: len(item[0]))
    batches = []
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        batches.append((torch.nn.utils.rnn.pad_sequence([c[0] for c in chunk], batch_first=True),
                        torch.tensor([len(c[0]) for c in chunk]), torch.tensor([c[1] for c in chunk]),
                        [c[2] for c in chunk], [c[3] for c in chunk]))
    return batches


def dev_per(model, batches: list) -> dict:
    """Greedy-CTC PER (%) pooled over all utterances (``all``) and per language."""
    pairs: dict[str, tuple[list, list]] = {}
    with torch.inference_mode():
        model.eval()
        for feats, lengths, lang_ids, refs, langs in batches:
            log_probs, out_lengths = model(feats, lengths, lang_ids)
            for ids, ref, lang in zip(greedy_decode(log_probs, out_lengths), refs, langs):
                pairs.setdefault(lang, ([], []))[0].append(ref)
                pairs[lang][1].append([model.tokens[i] for i in ids])
    counts = {lang: score_phones(refs, hyps) for lang, (refs, hyps) in pairs.items()}
    total = sum(counts.values(), ErrorCounts())
    return {"all": round(total.error_rate, 2), **{lang: round(c.error_rate, 2) for lang, c in sorted(counts.items())}}


def group_widths(module, group: str, preserve: float) -> list[int]:
    """Widths of the uniform plan of unit ``group`` (see the module docstring) at ``preserve``."""
    layers = encoder_layers(module.model)
    if group == "budget":
        return uniform_widths(Budget(module, "params+flops", preserve))
    minimum = minimum_widths(layers)
    return [max(low, round(preserve * layer.width)) if group in ("all", layer.kind) else layer.width
            for layer, low in zip(layers, minimum)]


def mode_spec(text: str) -> str:
    """``--modes`` item: a mode for every unit kind or a mix (``lstsq,conv=none``), checked by
    :func:`reconstruction_modes`; returned as written, the column name of the table."""
    try:
        reconstruction_modes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="the trained (dense) model")
    parser.add_argument("--data", nargs="+", required=True, help="dev data directories (one per language)")
    parser.add_argument("--preserve", type=float, nargs="+", default=[0.6, 0.5])
    parser.add_argument("--units", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--modes", nargs="+", type=mode_spec, default=list(MODES),
                        help=f"reconstruction specs: {', '.join(MODES)}, or per unit kind, e.g. lstsq,conv=none")
    parser.add_argument("--max-utts", type=int, default=0, help="utterances per data directory (0: all)")
    parser.add_argument("--utterances", type=int, default=8, help="synthetic inputs of the output KL")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs (KL and lstsq)")
    parser.add_argument("--other-load", default="not recorded", help="what else ran on the machine meanwhile")
    parser.add_argument("--out", required=True, help="output path without suffix (.json and .md are written)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    stored = load_model(args.checkpoint)
    if stored.target_unit == SUBWORD:
        raise ValueError(f"{args.checkpoint}: a subword model; this benchmark scores phones (PER)")
    module = CTCModule.from_file(args.checkpoint).eval()
    model = module.model
    batches = load_dev(args.data, model.languages, model.cmvn.mean.numel(), args.max_utts, args.batch)
    feats, lengths = synthetic_features(model.cmvn.mean, model.cmvn.std, args.utterances, 400, args.seed)
    distortion = OutputDistortion(model, feats, lengths)
    context = LstsqContext(model, seed=args.seed)
    params_budget, flops_budget = Budget(module, "params", 1.0), Budget(module, "flops", 1.0)
    layers = encoder_layers(model)

    def row(preserve, group, mode, pruned_module, widths) -> dict:
        t = time.perf_counter()
        per = dev_per(pruned_module.model, batches)
        return {"preserve": preserve, "units": group, "mode": mode, "per": per,
                "kl": round(distortion(pruned_module.model), 5),
                "params_ratio": round(params_budget.ratio(widths), 4),
                "macs_ratio": round(flops_budget.ratio(widths), 4),
                "widths": dict(zip((layer.name for layer in layers), widths)),
                "decode_seconds": round(time.perf_counter() - t, 2)}

    rows = [row(1.0, "dense", "-", module, [layer.width for layer in layers])]
    print(f"dense: PER {rows[0]['per']['all']}", flush=True)
    for preserve in args.preserve:
        for group in args.units:
            widths = group_widths(module, group, preserve)
            for mode in args.modes:
                pruned = prune_module(module, [LayerPlan(w, 1.0) for w in widths], reconstruction=mode,
                                      context=context)
                rows.append(row(preserve, group, mode, pruned, widths))
                print(f"r={preserve} {group} {mode}: PER {rows[-1]['per']['all']} KL {rows[-1]['kl']}", flush=True)
    record = {
        "description": "uniform AutoDFP pruning per unit group x reconstruction mode (strength 1); PER: greedy "
                       "CTC on the dev subset; kl: mean per-frame KL(dense || pruned) on synthetic inputs",
        "utterances": sum(len(b[1]) for b in batches), "max_utts_per_dir": args.max_utts,
        "synthetic_utterances": args.utterances, "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - started, 1), "rows": rows,
        "provenance": provenance(args.other_load, checkpoints=[args.checkpoint], data=list(args.data)),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(record, args.modes), encoding="utf-8")
    return record


def markdown(record: dict, modes: list[str]) -> str:
    """One row per (preserved ratio, unit group): the modes' PER and KL side by side."""
    prov = record["provenance"]
    dense = record["rows"][0]
    lines = [f"AutoDFP reconstruction by unit type: uniform pruning, strength 1. Dev PER (%, greedy CTC, "
             f"{record['utterances']} utterances, pooled) and output KL (nats/frame, "
             f"{record['synthetic_utterances']} synthetic inputs). Dense PER {dense['per']['all']}. "
             f"Commit {prov.get('commit')}{' (dirty)' if prov.get('dirty') else ''}, {prov['date']}, "
             f"{prov['machine']} ({record['threads']} threads; other load: {prov['other_load']}), "
             f"{record['seconds']} s. Command: `{prov['command']}`", "",
             "| preserve | units | params ratio | MACs ratio | " + " | ".join(f"PER {m}" for m in modes) + " | "
             + " | ".join(f"KL {m}" for m in modes) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(modes))]
    cells: dict[tuple, dict] = {}
    for r in record["rows"][1:]:
        cells.setdefault((r["preserve"], r["units"]), {})[r["mode"]] = r
    for (preserve, group), by_mode in cells.items():
        first = next(iter(by_mode.values()))
        per = [f"{by_mode[m]['per']['all']:.2f}" if m in by_mode else "" for m in modes]
        kl = [f"{by_mode[m]['kl']:.4f}" if m in by_mode else "" for m in modes]
        lines.append(f"| {preserve} | {group} | {first['params_ratio']:.3f} | {first['macs_ratio']:.3f} | "
                     + " | ".join(per) + " | " + " | ".join(kl) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
