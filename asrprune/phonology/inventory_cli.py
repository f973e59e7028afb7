"""``asrprune make-inventory``: the shared phone inventory of several languages' lexicons."""
from __future__ import annotations

import argparse

from asrprune.phonology.inventory import PhoneInventory
from asrprune.phonology.lexicon import Lexicon


def run_cli(args: argparse.Namespace) -> None:
    lexicons = [Lexicon.load(path) for path in args.lexicons]
    inventory = PhoneInventory.from_lexicons(lexicons)
    inventory.save(args.out)
    print(f"{args.out}: {len(inventory)} tokens ({len(inventory.phones)} phones) from {len(lexicons)} lexicons")


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-inventory",
        help="write the shared phone inventory (phones.txt) of several lexicons",
        description="Union of the phones of the given lexicons, as a token list: <blank>, <unk>, then the IPA "
        "phones sorted by code point, one per line (ESPnet token_list format).",
        epilog="example: asrprune make-inventory --lexicons data/lang_de/lexicon.txt data/lang_fr/lexicon.txt "
        "--out data/phones.txt",
    )
    parser.add_argument("--lexicons", nargs="+", required=True)
    parser.add_argument("--out", required=True)
    parser.set_defaults(func=run_cli)
