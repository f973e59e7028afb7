"""Facts about JoinAP's phonological vectors on this project's inventories, written to a markdown file.

1. Phones with identical phonological vectors (a pure JoinAP layer cannot tell them apart), per language, on the
   phones of the N most frequent wordfreq words (Han words only for zh), in the reference 51-dim layout and with
   ``supplementary_features``.
2. The initial spread of logits across phones (std over the vocabulary, averaged over frames) of each output layer
   on the mini recipe's encoder at initialisation, for random input frames (seed 0): whether the layers start alike.

Example: python benchmarks/joinap_vectors.py --top-n 20000 --other-load "nothing else" \
    --out benchmarks/results/joinap_vectors.md
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import wordfreq
import yaml

from asrprune.benchmarking.provenance import provenance, provenance_markdown
from asrprune.model.conformer_ctc import ConformerCTC
from asrprune.phonology.g2p import words_to_phones
from asrprune.phonology.inventory import PhoneInventory
from asrprune.phonology.normalise import is_han, untranscribable_characters
from asrprune.phonology.phonological_vectors import IdenticalVectorWarning, identical_vector_groups

LANGUAGES = ("de", "fr", "es", "it", "pl", "zh")


def language_phones(lang: str, top_n: int) -> list[str]:
    """Sorted phones of the G2P of the language's ``top_n`` most frequent transcribable words."""
    words = [w for w in wordfreq.top_n_list(lang, top_n) if not untranscribable_characters(w, lang)]
    if lang == "zh":
        words = [w for w in words if all(is_han(ch) for ch in w)]
    lexicon = words_to_phones(words, lang).lexicon
    return sorted({phone for phones in lexicon.values() for phone in phones})


def initial_logit_spread(config_path: Path, tokens: list[str]) -> dict[str, float]:
    encoder = yaml.safe_load(config_path.read_text())["model"]["encoder"]
    torch.manual_seed(0)
    feats, lengths = torch.randn(4, 300, 80), torch.full((4,), 300)
    spreads = {}
    for kind in ("flat", "joinap_linear", "joinap_nonlinear"):
        torch.manual_seed(0)
        model = ConformerCTC(tokens, {"all": tokens[2:]}, encoder=encoder, output_layer={"type": kind}).eval()
        with torch.no_grad():
            hidden, _, _ = model.encoder(model.cmvn(feats), lengths)
            spreads[kind] = model.output_layer(hidden).std(dim=-1).mean().item()
    return spreads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top-n", type=int, default=20000)
    parser.add_argument("--config", type=Path, default=Path("recipes/mini/conf/train.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", IdenticalVectorWarning)
    lines = [f"# JoinAP phonological vectors (wordfreq top {args.top_n} words per language)", "",
             provenance_markdown(provenance(args.other_load)), "",
             "| language | phones | identical vectors (51-dim) | with supplementary_features |", "|---|---|---|---|"]
    all_phones: set[str] = set()
    for lang in LANGUAGES:
        phones = language_phones(lang, args.top_n)
        all_phones.update(phones)
        plain = identical_vector_groups(phones) or "none"
        extra = identical_vector_groups(phones, supplementary_features=True) or "none"
        lines.append(f"| {lang} | {len(phones)} | {plain} | {extra} |")
    tokens = PhoneInventory.from_phones(all_phones).tokens
    spreads = initial_logit_spread(args.config, tokens)
    lines += ["", f"Initial logit spread across the {len(tokens)} tokens (std over tokens, mean over frames), "
              f"encoder of {args.config}, random frames, seed 0:", "", "| output layer | spread |", "|---|---|"]
    lines += [f"| {kind} | {value:.2f} |" for kind, value in spreads.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
