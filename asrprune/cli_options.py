"""The options several ``asrprune`` stages share, added with one spelling, help text and type everywhere.

Each stage's ``register_cli`` builds its own parser and calls these for the options it has in common with others:
checkpoints, train configs with ``--set`` overrides, training and dev data directories, data directories, outputs,
experiment folders, languages and seeds. Standard library only: a stage's ``--help`` should cost no more than its own
imports.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable


def add_checkpoint(parser: argparse.ArgumentParser, help: str, flag: str = "--checkpoint") -> None:
    """A required checkpoint to read, ``--checkpoint`` unless ``flag`` says otherwise. ``asrprune`` opens it before
    the stage starts (asrprune.cli.CHECKPOINT_ARGUMENTS), so a missing or broken file is one line, not a traceback."""
    parser.add_argument(flag, required=True, metavar="CKPT", help=help)


def add_train_config(
    parser: argparse.ArgumentParser, help: str, flag: str = "--config", required: bool = False
) -> None:
    """An ``asrprune train`` YAML config (``flag``) and ``--set KEY=VALUE`` to override its values, repeatable."""
    parser.add_argument(flag, required=required, metavar="YAML", help=help)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a value of {flag}, e.g. optim.lr=1e-3 (repeatable)",
    )


def add_train_dev_dirs(parser: argparse.ArgumentParser, dev_help: str, dev_required: bool = True) -> None:
    """``--train`` data directories (one or more) and ``--dev`` ones: one or more if ``dev_required``, else any
    number (default none)."""
    parser.add_argument("--train", nargs="+", required=True, metavar="DIR", help="training data directories")
    if dev_required:
        parser.add_argument("--dev", nargs="+", required=True, metavar="DIR", help=dev_help)
    else:
        parser.add_argument("--dev", nargs="*", default=[], metavar="DIR", help=dev_help)


def add_data_dir(parser: argparse.ArgumentParser, help: str) -> None:
    """A required ``--data``: one Kaldi-style data directory."""
    parser.add_argument("--data", required=True, metavar="DIR", help=help)


def add_out(
    parser: argparse.ArgumentParser, help: str, dest: str = "out", type: Callable[[str], Any] = str
) -> None:
    """The required output, ``-o``/``--out``: a file, folder or prefix as ``help`` says."""
    parser.add_argument("-o", "--out", required=True, dest=dest, type=type, metavar="OUT", help=help)


def add_exp(parser: argparse.ArgumentParser, help: str = "experiment directory") -> None:
    """A required ``--exp``: the experiment folder a stage writes to or reads from."""
    parser.add_argument("--exp", required=True, metavar="DIR", help=help)


def add_lang(
    parser: argparse.ArgumentParser,
    help: str = "language code (e.g. de, zh)",
    required: bool = True,
    choices: list[str] | None = None,
) -> None:
    """``--lang``: one language code, restricted to ``choices`` if given."""
    parser.add_argument("--lang", required=required, choices=choices, help=help)


def add_seed(parser: argparse.ArgumentParser, help: str = "random seed") -> None:
    """``--seed``: an integer random seed, default 0."""
    parser.add_argument("--seed", type=int, default=0, help=f"{help} (default %(default)s)")
