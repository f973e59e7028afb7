"""``asrprune prune run|export|report|grow|unseen-table``: pruning methods with masks (ASR pathways), their export,
their table, growing a new language's pathway during few-shot fine-tuning, and the table of a new language's
pathway choices."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Literal

from asrprune.decoding.decode_dir import load_model
from asrprune.pruning.masking import export
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.criteria import CRITERIA, build_criterion
from asrprune.pruning.masking.evaluate import decode_languages, evaluate
from asrprune.pruning.masking.export import dense_state_bytes
from asrprune.pruning.masking.masked_models import with_masks
from asrprune.pruning.masking.methods import DAP_INITS, MONOLINGUAL, MULTILINGUAL, Methods, Setup
from asrprune.pruning.masking.report import write_report
from asrprune.pruning.masking.schedule import SparsitySchedule
from asrprune.pruning.masking.unseen import unseen_language_table
from asrprune.training.add_language import save_module
from asrprune.training.checkpoints import atomic_write_json, read_json
from asrprune.training.config import Section, defaults_schema, load_checked, load_config, signature_schema
from asrprune.training.train import is_global_zero, train

METHOD_DEFAULTS = {
    "steps": 160,
    "rounds": 2,
    "interval": 10,
    "ramp_fraction": 0.5,
    "stop_fraction": 0.8,
    "middle_fraction": 0.5,
    "adaptive": {"criterion": "magnitude"},
    "criteria": {"saliency": {"decay": 0.9}, "scores": {"lr": 0.01}},
}


def method_schema() -> Section:
    """Keys and types of a method config: :data:`METHOD_DEFAULTS`'s, ``adaptive.criterion`` one of the criteria,
    ``criteria.<name>`` that criterion's constructor arguments."""
    schema = defaults_schema(METHOD_DEFAULTS)
    schema["adaptive"] = Section({"criterion": Literal[tuple(CRITERIA)]})
    schema["criteria"] = Section({name: Section(signature_schema(kind.__init__)) for name, kind in CRITERIA.items()})
    return schema


def load_method_config(path: str | None, budget_scale: float, num_languages: int, steps: int | None = None) -> dict:
    """Method settings (``conf/pathways.yaml`` over :data:`METHOD_DEFAULTS`, checked like training configs by
    :func:`asrprune.training.config.load_checked`; ``steps`` if given over the file), steps and ΔT scaled by
    ``budget_scale`` (at least one step per IMP round and language)."""
    config = load_checked(METHOD_DEFAULTS, method_schema(), path)
    if steps is not None:
        config["steps"] = steps
    if budget_scale <= 0:
        raise ValueError(f"--budget-scale must be > 0, got {budget_scale}")
    config["steps"] = max(config["rounds"] * num_languages, round(config["steps"] * budget_scale))
    config["interval"] = max(1, round(config["interval"] * budget_scale))
    return config


def label(method: str, init: str, criterion: str) -> str:
    return f"dap_{init}_{criterion}" if method == "dap" else method


def run_method(setup: Setup, method: str, sparsity: float, init: str = "middle", criterion: str = "saliency") -> dict:
    """Train (or reuse) and evaluate one method at one sparsity; writes and returns its ``result.json`` record."""
    name = label(method, init, criterion)
    out = setup.exp / "dense" if method == "dense" else setup.exp / f"sparsity{round(sparsity * 100)}" / name
    result_path = out / "result.json"
    finished = read_json(result_path)
    if finished is not None:
        return finished
    started = time.time()
    if method == "dense":
        checkpoint = str(setup.dense_checkpoint)
        record = {**decode_languages(setup, {lang: checkpoint for lang in setup.languages}, out), "steps": 0,
                  "train_seconds": 0.0, "multilingual": True, "masks": None,
                  "export_bytes": dense_state_bytes(load_model(checkpoint)), "stages": []}
        sparsity = 0.0
    else:
        outcome = Methods(setup, sparsity).run(method, init, criterion)
        if not is_global_zero():  # under DDP the other ranks only join the training; rank 0 evaluates and writes
            return {}
        record = evaluate(setup, outcome, out)
    record.update(method=name, sparsity=sparsity, languages=setup.languages,
                  eval_and_train_seconds_this_run=round(time.time() - started, 1))
    atomic_write_json(result_path, record)
    return record


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


def grow_pathway(checkpoint: str, lang: str, train_dirs: list[str], dev_dirs: list[str], config: dict, exp: Path,
                 criterion: str, interval: int) -> Path:
    """Few-shot fine-tune ``checkpoint`` on ``lang`` while re-evaluating only ``lang``'s mask row every ``interval``
    steps (criterion ``criterion``) at the row's current sparsity; the other pathways' masks stay as they are.

    The starting pathway is the one ``asrprune add-language --pathway`` chose (union of pathways or the closest
    language's); dormant weights are trainable so the new pathway can also take weights no language kept.
    """
    module = load_model(checkpoint)
    masks = module.model.masks
    if masks is None or not masks.state.per_language:
        raise ValueError(f"{checkpoint}: growing a pathway needs per-language masks")
    if lang not in module.model.languages:
        raise ValueError(f"{checkpoint}: no language {lang!r}; add it first with asrprune add-language")
    row = module.model.languages.index(lang)
    sparsity = 1.0 - sum(int(masks.mask(n)[row].sum()) for n in masks.names) / masks.num_weights()
    current = {name: masks.mask(name).clone() for name in masks.names}
    spec = {"per_language": True, "dormant_trainable": True, "scores": build_criterion(criterion).needs_scores}
    exp.mkdir(parents=True, exist_ok=True)
    init = exp / "init.ckpt"
    if is_global_zero() and not init.exists():  # the other DDP ranks wait for it in train()
        save_module(with_masks(module, spec, current), init)
    steps = config["trainer"]["max_steps"]
    callback = AdaptiveMasking(build_criterion(criterion), SparsitySchedule(sparsity, sparsity), interval,
                               stop_step=int(0.8 * steps), rows=[row])
    return train(config, train_dirs, dev_dirs, None, exp, [callback], init_checkpoint=init)


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
    parser = subparsers.add_parser(
        "prune",
        help="unstructured pruning with masks: baselines, adaptive masking, (Dynamic) ASR pathways",
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
    run.add_argument("--dense-checkpoint", required=True, help="the dense multilingual model to start from")
    run.add_argument("--data", required=True, help="folder with train_/dev_/test_<lang> and lang_<lang>/lexicon.txt")
    run.add_argument("--langs", nargs="+", required=True)
    run.add_argument("--train-config", help="asrprune train config for every fine-tuning stage")
    run.add_argument("--config", help="method settings (steps, rounds, interval, ...; see conf/pathways.yaml)")
    run.add_argument("--steps", type=int, help="training steps per method (overrides the config's steps)")
    run.add_argument("--budget-scale", type=float, default=1.0, help="multiply steps and ΔT (tiny validation runs)")
    run.add_argument("--exp", required=True)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a train-config value")
    run.set_defaults(func=run_cli)

    exp = commands.add_parser(
        "export", help="write a compact sparse model (kept weights + bit-packed masks)",
        description="Export a masked checkpoint: all pathways (the multilingual sparse model), or with --lang one "
        "language's pathway as a sparse monolingual model. 'asrprune decode --checkpoint' reads the result.",
        epilog="example: asrprune prune export --checkpoint exp/sparsity70/dap_middle_saliency/checkpoints/last.ckpt "
        "--lang de --out exp/de_pathway.pt",
    )
    exp.add_argument("--checkpoint", required=True)
    exp.add_argument("--out", required=True)
    exp.add_argument("--lang", help="export only this language's pathway")
    exp.set_defaults(func=export.run_cli)

    rep = commands.add_parser(
        "report", help="table and plots of every result under an experiment folder",
        description="Collects <exp>/**/result.json into results.md / results.json, a WER-vs-sparsity plot and a "
        "heat map of the overlap between languages' masks.",
        epilog="example: asrprune prune report --exp exp --out results --heatmap-sparsity 0.7",
    )
    rep.add_argument("--exp", required=True)
    rep.add_argument("--out", required=True)
    rep.add_argument("--heatmap-sparsity", type=float, default=0.7)
    rep.set_defaults(func=report_cli)

    grow = commands.add_parser(
        "grow", help="few-shot fine-tune a new language and adapt its pathway (after asrprune add-language)",
        description="Fine-tunes a pathway model on a language added with 'asrprune add-language --pathway ...', "
        "re-evaluating only that language's mask every --interval steps (the other pathways' masks are fixed; "
        "weights they share with the new pathway are updated by its batches, as in joint pathway training).",
        epilog="example: asrprune prune grow --checkpoint exp/pl_union.ckpt --lang pl --train data/train_pl "
        "--dev data/dev_pl --train-config conf/finetune.yaml --set trainer.max_steps=200 --exp exp/pl_grown",
    )
    grow.add_argument("--checkpoint", required=True)
    grow.add_argument("--lang", required=True)
    grow.add_argument("--train", nargs="+", required=True)
    grow.add_argument("--dev", nargs="+", required=True)
    grow.add_argument("--train-config")
    grow.add_argument("--criterion", default="saliency", choices=sorted(CRITERIA))
    grow.add_argument("--interval", type=int, default=10, help="ΔT: steps between re-evaluations of the pathway")
    grow.add_argument("--exp", required=True)
    grow.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a train-config value")
    grow.set_defaults(func=grow_cli)

    unseen = commands.add_parser(
        "unseen-table", help="table of a new language's pathway choices (zero-shot, few-shot, grown)",
        description="Reads <exp>/{dense,union,closest}/ as written by recipes/pathways/run.sh stage 3 (layout in "
        "asrprune/pruning/masking/unseen.py) and writes one row per start: the pathway's origin and sparsity, "
        "zero-shot PER/WER, few-shot PER/WER with the pathway fixed and with it grown.",
        epilog="example: asrprune prune unseen-table --exp exp/unseen_pl --lang pl --out results/unseen_pl.md",
    )
    unseen.add_argument("--exp", required=True)
    unseen.add_argument("--lang", required=True)
    unseen.add_argument("--out", required=True)
    unseen.set_defaults(func=unseen_table_cli)
