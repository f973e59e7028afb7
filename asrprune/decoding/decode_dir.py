"""``asrprune decode``: run a checkpoint over a data directory, decode, and score with jiwer.

Greedy CTC gives phones (scored as PER), or subword pieces joined into words for subword models. Lexicon-constrained
beam search gives words. Words are scored as WER, or as CER without whitespace for Mandarin. Everything is written
with per-utterance alignments and the real-time factor.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from asrprune.benchmarking.provenance import RECIPE_LOAD, provenance
from asrprune.cli_options import add_checkpoint, add_data_dir, add_out
from asrprune.data.dataset import CTCDataset, collate
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.kaldi_dir import read_data_dir
from asrprune.data.sampler import BucketBatchSampler
from asrprune.decoding.greedy import greedy_decode
from asrprune.decoding.lexicon_beam import LexiconBeamDecoder
from asrprune.model.store import load_model
from asrprune.data.targets import SUBWORD
from asrprune.phonology.lexicon import Lexicon
from asrprune.phonology.subwords import pieces_to_text
from asrprune.scoring.error_rates import (
    alignment_text,
    metric_for_language,
    score_characters_zh,
    score_phones,
    score_words,
)
from asrprune.scoring.result_table import ResultRow, write_results


# Added to a hypothesis per word. Phone CTC models have no word-boundary token, so without a penalty the lexicon
# search splits long words into short lexicon words for free. Chosen on the mini recipe's dev sets (lexicon-beam
# WER with no penalty: fr 49.6 %, es 45.4 %; mean over de/fr/es/it: -3 -> 13.6 %, -5 -> 13.9 %, -8 -> 17.5 %,
# -12 -> 28.6 %).
DEFAULT_WORD_SCORE = -3.0


def decode_data_dir(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    lexicon_path: str | Path | None = None,
    lm_path: str | Path | None = None,
    beam_size: int = 50,
    lm_weight: float = 2.0,
    word_score: float = DEFAULT_WORD_SCORE,
    max_batch_seconds: float = 120.0,
    device: str = "cpu",
    max_padded_seconds: float | None = None,
) -> list[ResultRow]:
    """Decode ``data_dir`` and write hypotheses, alignments and scores to ``out_dir``.

    Batches hold at most ``max_batch_seconds`` of audio, and at most ``max_padded_seconds`` (default: the same)
    counted after padding (longest utterance x batch size), so one long clip among short ones is decoded in a small
    batch and the memory follows the budget, not the clip (``inf``: no padded bound, the behaviour before).

    Phone models give PER of greedy decoding and, with a lexicon, WER (CER for zh) of beam search. Subword models
    (``asrprune make-subwords``) give WER (CER for zh) of greedy decoding. Returns the result rows.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stored = load_model(checkpoint, device)  # any kind of model file (asrprune.model.store)
    model = stored.model
    subwords = stored.target_unit == SUBWORD
    if subwords and lexicon_path is not None:
        raise ValueError(f"{checkpoint}: a subword model has no phones to search a lexicon with; omit --lexicon")
    utterances = read_data_dir(data_dir)
    languages = sorted({u.lang for u in utterances})
    if len(languages) != 1:
        raise ValueError(f"{data_dir}: decode one language per data directory (found {languages})")
    lang = languages[0]
    features = FeatureCache(None, FbankConfig(stored.num_mel_bins))  # extraction is part of the RTF
    dataset = CTCDataset(utterances, None, model.languages, feature_cache=features)
    batches = BucketBatchSampler(dataset.durations(), dataset.languages(), max_batch_seconds, shuffle=False,
                                 max_padded_seconds=max_padded_seconds)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate)
    beam = None
    if lexicon_path is not None:
        beam = LexiconBeamDecoder(
            model.tokens,
            Lexicon.load(lexicon_path),
            lm_path=lm_path,
            beam_size=beam_size,
            lm_weight=lm_weight,
            word_score=word_score,
        )

    greedy_tokens: dict[str, list[str]] = {}
    beam_words: dict[str, list[str]] = {}
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in tqdm(loader, desc=f"decode {Path(data_dir).name}", unit="batch"):
            batch = batch.to(device)
            log_probs, out_lengths = model(batch.feats, batch.feat_lengths, batch.lang_ids)
            log_probs, out_lengths = log_probs.cpu(), out_lengths.cpu()
            for uttid, ids in zip(batch.uttids, greedy_decode(log_probs, out_lengths)):
                greedy_tokens[uttid] = [model.tokens[i] for i in ids]
            if beam is not None:
                for uttid, hyp in zip(batch.uttids, beam.decode(log_probs, out_lengths)):
                    beam_words[uttid] = hyp.words
    decode_seconds = time.perf_counter() - started
    audio_seconds = sum(u.duration for u in utterances)

    ids = [u.uttid for u in utterances]
    name = Path(data_dir).name
    text_refs = [u.text for u in utterances]
    metric = metric_for_language(lang)
    score_text = score_characters_zh if metric == "cer" else score_words
    rows = []
    if subwords:
        text_hyps = [pieces_to_text(greedy_tokens[i]) for i in ids]
        rows.append(ResultRow(name, f"{metric.upper()} (greedy subwords)", score_text(text_refs, text_hyps)))
        _write_table(out_dir / "hyp.text", ids, text_hyps)
        (out_dir / "align.text.txt").write_text(alignment_text(text_refs, text_hyps, ids, metric), encoding="utf-8")
    else:
        phone_refs = [list(u.phones) for u in utterances]
        phone_hyps = [greedy_tokens[i] for i in ids]
        rows.append(ResultRow(name, "PER (greedy)", score_phones(phone_refs, phone_hyps)))
        _write_table(out_dir / "hyp.phones", ids, [" ".join(h) for h in phone_hyps])
        (out_dir / "align.phones.txt").write_text(alignment_text(phone_refs, phone_hyps, ids, "per"), encoding="utf-8")
    if beam is not None:
        text_hyps = [" ".join(beam_words[i]) for i in ids]
        rows.append(ResultRow(name, f"{metric.upper()} (lexicon beam)", score_text(text_refs, text_hyps)))
        _write_table(out_dir / "hyp.text", ids, text_hyps)
        (out_dir / "align.text.txt").write_text(alignment_text(text_refs, text_hyps, ids, metric), encoding="utf-8")
    write_results(rows, out_dir)
    summary = {
        "checkpoint": str(checkpoint),
        "data": str(data_dir),
        "language": lang,
        "target_unit": stored.target_unit,
        "utterances": len(ids),
        "audio_seconds": round(audio_seconds, 2),
        "decode_seconds": round(decode_seconds, 2),
        "real_time_factor": round(decode_seconds / audio_seconds, 4),
        "device": device,
        "threads": torch.get_num_threads(),
        "lexicon": str(lexicon_path) if lexicon_path else None,
        "lm": str(lm_path) if lm_path else None,
        "provenance": provenance(RECIPE_LOAD, device, checkpoints=[checkpoint], data=str(data_dir)),
    }
    (out_dir / "decode_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return rows


def _write_table(path: Path, ids: list[str], values: list[str]) -> None:
    path.write_text("".join(f"{i} {v}\n" for i, v in zip(ids, values)), encoding="utf-8")


def run_cli(args: argparse.Namespace) -> None:
    rows = decode_data_dir(
        args.checkpoint,
        args.data,
        args.out,
        lexicon_path=args.lexicon,
        lm_path=args.lm,
        beam_size=args.beam_size,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        device=args.device,
    )
    for row in rows:
        print(f"{row.dataset}: {row.metric} {row.counts.error_rate:.2f}%")


def register_cli(subparsers) -> None:
    """Add the ``decode`` sub-command."""
    parser = subparsers.add_parser(
        "decode",
        description=(
            "Run the model over one language's data directory. Greedy CTC gives phones, scored as PER; with "
            "--lexicon, lexicon-constrained beam search (torchaudio/flashlight) gives words, scored as WER "
            "(CER without whitespace for Mandarin). Writes hyp.phones, hyp.text, align.*.txt, results.md, "
            "results.json and decode_summary.json (with the real-time factor) to --out."
        ),
        epilog="example: asrprune decode --checkpoint exp/multi/checkpoints/best.ckpt --data data/test_de "
        "--lexicon data/lang_de/lexicon.txt --out exp/multi/decode_test_de",
    )
    add_checkpoint(parser, "the model to decode with (a checkpoint, a pruned model or a compact export)")
    add_data_dir(parser, "data directory of one language")
    add_out(parser, "output directory")
    parser.add_argument("--lexicon", help="lexicon.txt for word-level beam search (omit: greedy PER only)")
    parser.add_argument("--lm", help="optional word n-gram LM in ARPA format")
    parser.add_argument("--beam-size", type=int, default=50, help="beam search width (default %(default)s)")
    parser.add_argument(
        "--lm-weight", type=float, default=2.0, help="LM weight (log10 LM scores vs natural-log acoustic)"
    )
    parser.add_argument(
        "--word-score",
        type=float,
        default=DEFAULT_WORD_SCORE,
        help="score added per word (negative = insertion penalty; default %(default)s, see DEFAULT_WORD_SCORE)",
    )
    parser.add_argument("--device", default="cpu", help="torch device to decode on (default %(default)s)")
    parser.set_defaults(func=run_cli)
