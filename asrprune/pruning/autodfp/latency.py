"""Measured CPU latency of every prunable layer as a function of its width: the lookup table of the latency budget.

Why a measured table: MACs are not CPU time, and per-layer latency lookup tables (AMC, NetAdapt) are the usual
answer. Known limitation, measured on the mini model (see :mod:`.budget`): a "0.5" plan under this table decoded
only 1.23-1.43x faster, so it is an option and not the default budget. Likely cause (not proven): the front end's
oneDNN convolutions change speed abruptly with width and input size (Conv2d #1 at batch 8 x 400 frames: 12.5 ms
at 122 channels, 45 ms at 136), so a table of isolated layers on fixed 4 s inputs, which charges the front end 67 %
of the dense time, misjudges what it costs on real, shorter, padded decoding batches.

How (data-free): each layer kind is rebuilt at a grid of widths with fresh random weights
(:func:`asrprune.model.conformer_layout.resize_encoder`) and run on random inputs of ``batch`` utterances of
``frames`` frames (the decoding benchmark's batch of 8 and the budget's 4 s utterance), on one thread. All grid
points, and the dense model itself, are timed interleaved, ``repeats`` times each (a sample repeats short layers
until it lasts 20 ms), and the median is kept, so a machine shared with other jobs slows every entry alike.
Between grid points the latency is interpolated linearly; each table is made non-decreasing in width (cumulative
maximum) so the budget's bisections stay valid.

Entries: ``subsampling.0`` (Conv2d #1 + ReLU, width c1); ``subsampling.1`` (Conv2d #2 + ReLU + the embedding linear,
a 2-D table over (c1, c2), interpolated bilinearly); ``ffn`` (one feed-forward module); ``heads`` (rel-pos
self-attention, every head count); ``conv`` (conv module). Blocks share a model width, so one table per kind serves
every block. ``fixed`` = dense model forward (CMVN, positional encoding, LayerNorms, residuals, output layer,
log-softmax) minus the dense entries of all layers.
"""
from __future__ import annotations

import copy
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from asrprune.files import atomic_write_text
from asrprune.model.conformer_layout import BLOCK_LAYERS, Layer, conformer_dims, resize_encoder

# Grid points per width axis; the front end gets more: its convolutions' CPU time jumps with width (on the mini
# model at batch 8, Conv2d #1 took 12.5 ms at 122 channels and 45 ms at 136: oneDNN picks another kernel and the
# output no longer fits in cache), so linear interpolation needs dense points there.
GRID_POINTS = {"subsampling.0": 13, "subsampling.1": 13, "ffn": 9, "heads": 9, "conv": 9}
# Batch of the timed inputs: the decoding benchmark's batch (benchmarks/autodfp_speed.py --batch).
BATCH = 8
# Each timing sample repeats a layer until it lasts this long, so millisecond layers are not lost in timer noise.
MIN_SAMPLE_SECONDS = 0.02
BLOCK_KINDS = ("ffn", "heads", "conv")


@dataclass
class LatencyTable:
    """Seconds per forward of ``batch`` x ``frames`` frames on one thread, per layer kind and width.

    ``widths[key]`` is the grid (ascending ints, the dense width last) of ``subsampling.0``, ``subsampling.1``
    (its c2 axis; its c1 axis is ``widths["subsampling.0"]``), ``ffn``, ``heads`` and ``conv``; ``seconds[key]``
    the medians (a list of lists, indexed [c1][c2], for ``subsampling.1``); ``fixed`` the seconds no width changes.
    """

    widths: dict
    seconds: dict
    fixed: float
    frames: int
    batch: int
    repeats: int

    def lookup(self, layer: Layer, width: int, c1: int) -> float:
        """Seconds of ``layer`` at ``width`` units; ``c1`` is the current width of subsampling.0 (used by
        subsampling.1 only)."""
        key = table_key(layer)
        if key != "subsampling.1":
            return float(np.interp(width, self.widths[key], self.seconds[key]))
        rows = [np.interp(width, self.widths[key], row) for row in self.seconds[key]]
        return float(np.interp(c1, self.widths["subsampling.0"], rows))

    def save(self, path: str | Path) -> None:
        """Write the table as JSON, atomically (a killed measurement never leaves a partial table)."""
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, layers: list[Layer]) -> "LatencyTable":
        """Read a table written by :meth:`save` and check that it was measured for a model with the dense widths
        of ``layers``."""
        try:
            table = cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as error:
            raise OSError(f"{path}: cannot read latency table ({error.strerror})") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a latency table ({error})") from error
        for key, dense in _dense_widths(layers).items():
            if key not in table.widths or table.widths[key][-1] != dense:
                raise ValueError(f"{path}: widths.{key} does not end at this model's dense width {dense}")
        return table


def table_key(layer: Layer) -> str:
    """The table entry of ``layer``: its name for the front end, its kind for block layers."""
    return layer.kind if layer.block is not None else layer.name


def _dense_widths(layers: list[Layer]) -> dict:
    """Dense width per table entry; every block must have the same widths (one table per kind)."""
    dense: dict = {}
    for layer in layers:
        if dense.setdefault(table_key(layer), layer.width) != layer.width:
            raise ValueError(f"latency table: {layer.name} has width {layer.width}, another block "
                             f"{dense[table_key(layer)]} (an already pruned model? use --budget flops or params)")
    return dense


def width_grid(dense: int, minimum: int, points: int) -> list[int]:
    """Ascending distinct ints from ``minimum`` to ``dense`` (every width when there are few)."""
    return sorted({int(round(w)) for w in np.linspace(minimum, dense, min(points, dense - minimum + 1))})


def _resized(model, c1: int, c2: int, block_widths: dict):
    """A copy of ``model``'s encoder with every block at ``block_widths`` and front-end widths c1, c2."""
    encoder = copy.deepcopy(model.encoder)
    blocks = [{short: block_widths[kind] for short, kind, _ in BLOCK_LAYERS} for _ in encoder.encoders]
    resize_encoder(encoder, {"subsampling": [c1, c2], "blocks": blocks})
    return encoder.eval()


def _timers(model, widths: dict, frames: int, batch: int, minimum: dict) -> dict:
    """Zero-argument callables, one per table entry, each running one layer on random inputs."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(batch, frames, model.cmvn.mean.numel(), generator=g)
    lengths = torch.full((batch,), frames, dtype=torch.long)
    encoder = _resized(model, minimum["subsampling.0"], minimum["subsampling.1"],
                       {k: minimum[k] for k in BLOCK_KINDS})
    with torch.inference_mode():
        x, pos = encoder.embed(feats, torch.ones(batch, 1, frames, dtype=torch.bool))[0]
    mask = torch.ones(batch, 1, x.shape[1], dtype=torch.bool)
    timers = {}
    for c1 in widths["subsampling.0"]:
        conv0 = torch.nn.Sequential(torch.nn.Conv2d(1, c1, 3, 2), torch.nn.ReLU())
        timers["subsampling.0", c1] = (lambda m=conv0: m(feats[:, None]))
        h = conv0(feats[:, None])
        for c2 in widths["subsampling.1"]:
            conv2 = torch.nn.Sequential(torch.nn.Conv2d(c1, c2, 3, 2), torch.nn.ReLU())
            out = torch.nn.Linear(c2 * conformer_dims(model).freq[1], x.shape[-1])
            timers["subsampling.1", c1, c2] = (lambda a=conv2, b=out, h=h: b(a(h).transpose(1, 2).flatten(2)))
    for kind in BLOCK_KINDS:
        for w in widths[kind]:
            layer = _resized(model, 1, 1, {**{k: minimum[k] for k in BLOCK_KINDS}, kind: w}).encoders[0]
            timers[kind, w] = {
                "ffn": lambda m=layer.feed_forward: m(x),
                "heads": lambda m=layer.self_attn: m(x, x, x, pos, mask),
                "conv": lambda m=layer.conv_module: m(x),
            }[kind]
    lang_ids = torch.zeros(batch, dtype=torch.long)
    timers["model"] = lambda: model(feats, lengths, lang_ids)
    return timers


def measure(model, layers: list[Layer], minimum: list[int], frames: int, batch: int = BATCH,
            repeats: int = 5, min_sample_seconds: float = MIN_SAMPLE_SECONDS) -> LatencyTable:
    """Measure the table of ``model`` (a ConformerCTC in eval mode; its weights are not used, only its shapes and
    the dense forward for ``fixed``), whose prunable ``layers`` have per-layer ``minimum`` widths. Runs on one
    thread (restores the thread count after)."""
    dense = _dense_widths(layers)
    lowest = {}
    for layer, m in zip(layers, minimum):
        lowest[table_key(layer)] = min(lowest.get(table_key(layer), m), m)
    widths = {key: width_grid(dense[key], lowest[key], GRID_POINTS[key]) for key in dense}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            timers = _timers(model.eval(), widths, frames, batch, lowest)
            calls = {}
            for key, run in timers.items():  # warm-up; enough calls per sample to last min_sample_seconds
                started = time.perf_counter()
                run()
                calls[key] = max(1, math.ceil(min_sample_seconds / (time.perf_counter() - started)))
            samples: dict = {key: [] for key in timers}
            for _ in range(repeats):
                for key, run in timers.items():
                    started = time.perf_counter()
                    for _ in range(calls[key]):
                        run()
                    samples[key].append((time.perf_counter() - started) / calls[key])
    finally:
        torch.set_num_threads(threads)
    median = {key: statistics.median(v) for key, v in samples.items()}
    seconds = {key: np.maximum.accumulate([median[key, w] for w in widths[key]]).tolist()
               for key in ("subsampling.0",) + BLOCK_KINDS}
    grid = np.array([[median["subsampling.1", c1, c2] for c2 in widths["subsampling.1"]]
                     for c1 in widths["subsampling.0"]])
    seconds["subsampling.1"] = np.maximum.accumulate(np.maximum.accumulate(grid, axis=0), axis=1).tolist()
    table = LatencyTable(widths, seconds, 0.0, frames, batch, repeats)
    dense_layers = sum(table.lookup(layer, layer.width, dense["subsampling.0"]) for layer in layers)
    table.fixed = max(0.0, median["model"] - dense_layers)
    return table


def load_or_measure(model, layers: list[Layer], minimum: list[int], frames: int,
                    path: str | Path | None) -> LatencyTable:
    """The table at ``path`` if it exists (checked against ``layers``), else a fresh :func:`measure`, written to
    ``path`` when one is given, so that every method of a recipe prunes against the same measurements."""
    if path is not None and Path(path).exists():
        return LatencyTable.load(path, layers)
    table = measure(model, layers, minimum, frames)
    if path is not None:
        table.save(path)
    return table
