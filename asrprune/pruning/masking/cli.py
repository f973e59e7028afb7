"""``asrprune prune run|export|report|grow|unseen-table``: pruning methods with masks (ASR pathways), their export,
their table, growing a new language's pathway during few-shot fine-tuning, and the table of a new language's
pathway choices."""
from __future__ import annotations

import argparse
from pathlib import Path

from asrprune.cli_options import add_checkpoint, add_exp, add_lang, add_out, add_train_config, add_train_dev_dirs
from asrprune.pruning.masking import export
from asrprune.pruning.masking.criteria import CRITERIA
from asrprune.pruning.masking.methods import DAP_INITS, MONOLINGUAL, MULTILINGUAL, Setup
from asrprune.pruning.masking.report import write_report
from asrprune.pruning.masking.runner import grow_pathway, load_method_config, run_method
from asrprune.pruning.masking.unseen import unseen_language_table
from asrprune.training.config import load_config


def run_cli(args: argparse.Namespace) -> None:
    setup = Setup(
        dense_checkpoint=Path(args.dense_checkpoint),
        data=Path(args.data),
        languages=args.langs,
        train_config=load_config(args.train_config, args.set),
        method_config=load_method_config(args.config, args.budget_scale, len(args.langs), args.steps),
        exp=Path(args.exp),
    )
    if not setup.dense_checkpoint.exists():
        raise OSError(f"{setup.dense_checkpoint}: dense checkpoint not found (--dense-checkpoint)")
    record = run_method(setup, args.method, args.sparsity, args.init, args.criterion)
    if not record:  # a DDP rank other than 0
        return
    per = " ".join(f"{lang} {value:.1f}" for lang, value in record["per"].items())
    wer = " ".join(f"{lang} {value:.1f}" for lang, value in record["wer"].items())
    print(f"{record['method']} at {record['sparsity']:.0%}: PER {per} | WER {wer} | {record['steps']} steps, "
          f"{record['train_seconds'] / 60:.1f} min training")


def report_cli(args: argparse.Namespace) -> None:
    records = write_report(Path(args.exp), Path(args.out), args.heatmap_sparsity)
    print(f"{len(records)} results -> {args.out}/results.md, wer_vs_sparsity.png, mask_overlap.png")


def grow_cli(args: argparse.Namespace) -> None:
    config = load_config(args.train_config, args.set)
    best = grow_pathway(args.checkpoint, args.lang, args.train, args.dev, config, Path(args.exp), args.criterion,
                        args.interval)
    print(f"best checkpoint: {best}")


def unseen_table_cli(args: argparse.Namespace) -> None:
    table = unseen_language_table(Path(args.exp), args.lang)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table, encoding="utf-8")
    print(table, end="")


def register_cli(subparsers) -> None:
    """Add the ``prune`` sub-command and its commands."""
    parser = subparsers.add_parser(
        "prune",
        description="Pruning with binary weight masks over the encoder's feed-forward, attention and convolution "
        "weights, shared or one per language (ASR pathways). 'run' trains and evaluates one method at one "
        "sparsity, 'export' writes a compact sparse model (a pathway or the multilingual model), 'report' "
        "gathers the results into a table and plots.",
        epilog="example: asrprune prune run --method dap --init middle --criterion saliency --sparsity 0.7 "
        "--dense-checkpoint ../mini/exp/multi/checkpoints/best.ckpt --data ../mini/data --langs de fr es it "
        "--train-config conf/finetune.yaml --config conf/pathways.yaml --exp exp",
    )
    commands = parser.add_subparsers(dest="prune_command", metavar="<command>", required=True)

    run = commands.add_parser(
        "run", help="train and evaluate one pruning method at one sparsity",
        description="Runs a method's training stages from the dense multilingual checkpoint (each stage resumable, "
        "finished stages reused by later methods), exports the sparse models compactly, decodes the test sets from "
        "the exports and writes <exp>/sparsity<pct>/<method>/result.json. Methods: dense (evaluation only); "
        "monolingual omp, lth, lsp (per-language IMP), adaptive; multilingual lap, static (pathways), dap.",
        epilog="example: asrprune prune run --method lsp --sparsity 0.5 --dense-checkpoint exp/multi/best.ckpt "
        "--data data --langs de fr --train-config conf/finetune.yaml --exp exp/pathways --budget-scale 0.1",
    )
    run.add_argument("--method", required=True, choices=("dense",) + MONOLINGUAL + MULTILINGUAL)
    run.add_argument("--init", default="middle", choices=DAP_INITS, help="dap: initial masks (default %(default)s)")
    run.add_argument("--criterion", default="saliency", choices=sorted(CRITERIA),
                     help="dap: mask re-evaluation criterion (default %(default)s)")
    run.add_argument("--sparsity", type=float, default=0.7, help="target fraction of prunable weights masked")
    add_checkpoint(run, "the dense multilingual model to start from", flag="--dense-checkpoint")
    run.add_argument("--data", required=True, help="folder with train_/dev_/test_<lang> and lang_<lang>/lexicon.txt")
    run.add_argument("--langs", nargs="+", required=True, help="languages to prune for (and to test)")
    add_train_config(run, "asrprune train config for every fine-tuning stage", flag="--train-config")
    run.add_argument("--config", help="method settings (steps, rounds, interval, ...; see conf/pathways.yaml)")
    run.add_argument("--steps", type=int, help="training steps per method (overrides the config's steps)")
    run.add_argument("--budget-scale", type=float, default=1.0, help="multiply steps and ΔT (tiny validation runs)")
    add_exp(run, "experiment folder (shared by all methods and sparsities)")
    run.set_defaults(func=run_cli)

    exp = commands.add_parser(
        "export", help="write a compact sparse model (kept weights + bit-packed masks)",
        description="Export a masked checkpoint: all pathways (the multilingual sparse model), or with --lang one "
        "language's pathway as a sparse monolingual model. 'asrprune decode --checkpoint' reads the result.",
        epilog="example: asrprune prune export --checkpoint exp/sparsity70/dap_middle_saliency/checkpoints/last.ckpt "
        "--lang de --out exp/de_pathway.pt",
    )
    add_checkpoint(exp, "the masked checkpoint to export")
    add_out(exp, "compact model file to write")
    add_lang(exp, "export only this language's pathway", required=False)
    exp.set_defaults(func=export.run_cli)

    rep = commands.add_parser(
        "report", help="table and plots of every result under an experiment folder",
        description="Collects <exp>/**/result.json into results.md / results.json, a WER-vs-sparsity plot and a "
        "heat map of the overlap between languages' masks.",
        epilog="example: asrprune prune report --exp exp --out results --heatmap-sparsity 0.7",
    )
    add_exp(rep, "experiment folder to collect the result.json files of")
    add_out(rep, "folder to write results.md, results.json and the plots to")
    rep.add_argument("--heatmap-sparsity", type=float, default=0.7,
                     help="sparsity whose masks the overlap heat map shows (default %(default)s)")
    rep.set_defaults(func=report_cli)

    grow = commands.add_parser(
        "grow", help="few-shot fine-tune a new language and adapt its pathway (after asrprune add-language)",
        description="Fine-tunes a pathway model on a language added with 'asrprune add-language --pathway ...', "
        "re-evaluating only that language's mask every --interval steps (the other pathways' masks are fixed; "
        "weights they share with the new pathway are updated by its batches, as in joint pathway training).",
        epilog="example: asrprune prune grow --checkpoint exp/pl_union.ckpt --lang pl --train data/train_pl "
        "--dev data/dev_pl --train-config conf/finetune.yaml --set trainer.max_steps=200 --exp exp/pl_grown",
    )
    add_checkpoint(grow, "the pathway model written by asrprune add-language")
    add_lang(grow, "the added language, whose pathway grows")
    add_train_dev_dirs(grow, "dev data directories (checkpoint selection)")
    add_train_config(grow, "asrprune train config for the fine-tuning", flag="--train-config")
    grow.add_argument("--criterion", default="saliency", choices=sorted(CRITERIA),
                      help="mask re-evaluation criterion (default %(default)s)")
    grow.add_argument("--interval", type=int, default=10, help="ΔT: steps between re-evaluations of the pathway")
    add_exp(grow)
    grow.set_defaults(func=grow_cli)

    unseen = commands.add_parser(
        "unseen-table", help="table of a new language's pathway choices (zero-shot, few-shot, grown)",
        description="Reads <exp>/{dense,union,closest}/ as written by recipes/pathways/run.sh stage 3 (layout in "
        "asrprune/pruning/masking/unseen.py) and writes one row per start: the pathway's origin and sparsity, "
        "zero-shot PER/WER, few-shot PER/WER with the pathway fixed and with it grown.",
        epilog="example: asrprune prune unseen-table --exp exp/unseen_pl --lang pl --out results/unseen_pl.md",
    )
    add_exp(unseen, "the new language's experiment folder (holding dense/, union/, closest/)")
    add_lang(unseen, "the new language")
    add_out(unseen, "markdown table to write")
    unseen.set_defaults(func=unseen_table_cli)
