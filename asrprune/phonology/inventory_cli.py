"""``asrprune make-inventory``: the shared phone inventory of several languages' lexicons."""
from __future__ import annotations

import argparse

from asrprune.cli_options import add_out
from asrprune.phonology.inventory import PhoneInventory
from asrprune.phonology.lexicon import Lexicon


def run_cli(args: argparse.Namespace) -> None:
    lexicons = [Lexicon.load(path) for path in args.lexicons]
    inventory = PhoneInventory.from_lexicons(lexicons)
    inventory.save(args.out)
    print(f"{args.out}: {len(inventory)} tokens ({len(inventory.phones)} phones) from {len(lexicons)} lexicons")


def register_cli(subparsers) -> None:
    """Add the ``make-inventory`` sub-command."""
    parser = subparsers.add_parser(
        "make-inventory",
        description="Union of the phones of the given lexicons, as a token list: <blank>, <unk>, then the IPA "
        "phones sorted by code point, one per line (ESPnet token_list format).",
        epilog="example: asrprune make-inventory --lexicons data/lang_de/lexicon.txt data/lang_fr/lexicon.txt "
        "--out data/phones.txt",
    )
    parser.add_argument("--lexicons", nargs="+", required=True, help="lexicon.txt files, one per language")
    add_out(parser, "token list to write (phones.txt)")
    parser.set_defaults(func=run_cli)
