"""Measured CPU latency of every prunable layer as a function of its width: the lookup table of the latency budget.

Why a measured table: MACs are not CPU time, and per-layer latency lookup tables (AMC, NetAdapt) are the usual
answer. What is timed is the *whole model* (CMVN, front end, every block, output layer, log-softmax) on one thread,
on random inputs of ``batch`` utterances of each length in ``frames`` (one batch per length, their times summed),
with one table entry's layers resized and everything else dense ("in situ"). Several lengths are offered because the
front end's speed jumps where its output tensors stop fitting in the CPU's cache, which depends on the input length
as much as on the width; on the mini model, with cold timings, a table timed at 210, 340 and 480 frames mispredicted
decoding time as much as one timed at 400; timing warm (:func:`time_interleaved`) brought the predictions for
searched plans close, deep front-end cuts are still over-predicted (benchmarks/results/autodfp_latency_check/). The
first table timed every layer alone on fixed inputs; a "0.5" plan under it decoded only 1.23-1.43x faster than dense
(README: AutoDFP), because isolated layers miss what the model around them costs (the front end's oneDNN
convolutions change speed abruptly with width and with the tensors around them: Conv2d #1 at batch 8 x 400 frames
took 12.5 ms at 122 channels and 45 ms at 136).

The table is additive: the predicted time of a plan is ``fixed`` plus one entry per layer. From the in-situ
timings T:
- block kinds (``ffn``, ``heads``, ``conv``; blocks share a model width, so one table per kind serves every block):
  T with every layer of that kind at width w, minus T with them at the grid's narrowest width, divided by the
  number of such layers (8 feed-forwards, 4 attentions, 4 conv modules in the mini model);
- the front end, with the blocks dense: ``subsampling.0`` (Conv2d #1, width c1) is T(c1, c2_min) - T(c1_min,
  c2_min); ``subsampling.1`` (Conv2d #2 with the embedding linear) a 2-D table over (c1, c2), T(c1, c2) -
  T(c1, c2_min), interpolated bilinearly;
- ``fixed``: T of the dense model minus the dense entries of all layers.
Each table is made non-decreasing in width (cumulative maximum) so that the budget's bisections stay valid.

Grids: with ``multiple`` > 1 (``asrprune autodfp --width-multiple``), every multiple of it between a kind's fewest
units and its dense width, and the dense width: the budget then keeps only those widths (:class:`.budget.Budget`),
so every plan is priced at measured points, never interpolated, and its GEMMs and convolutions get widths the CPU's
vector units divide evenly (16 floats per AVX-512 register). Layers of fewer than two multiples (attention heads)
use every width. With ``multiple`` 1, :data:`GRID_POINTS` widths per axis, interpolated linearly between.
All grid points and the dense model are timed interleaved, ``repeats`` times each, and the median is kept, so a
machine shared with other jobs slows every entry alike.
"""
from __future__ import annotations

import copy
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from asrprune.files import atomic_write_text
from asrprune.model.conformer_layout import BLOCK_LAYERS, Layer, resize_encoder

# Grid points per width axis with width multiple 1; the front end gets more: its convolutions' CPU time jumps with
# width (oneDNN picks another kernel, the output no longer fits in cache), so linear interpolation needs dense points.
GRID_POINTS = {"subsampling.0": 13, "subsampling.1": 13, "ffn": 9, "heads": 9, "conv": 9}
# Batch of the timed inputs: the decoding benchmark's batch (benchmarks/autodfp_speed.py --batch).
BATCH = 8
BLOCK_KINDS = ("ffn", "heads", "conv")


@dataclass
class LatencyTable:
    """Seconds per forward of one batch of ``batch`` utterances at each length of ``frames`` (summed) on one
    thread, per layer kind and width.

    ``widths[key]`` is the grid (ascending ints, the dense width last) of ``subsampling.0``, ``subsampling.1``
    (its c2 axis; its c1 axis is ``widths["subsampling.0"]``), ``ffn``, ``heads`` and ``conv``; ``seconds[key]``
    the entries (a list of lists, indexed [c1][c2], for ``subsampling.1``); ``fixed`` the seconds no width changes;
    ``multiple`` the width multiple of the grids (1: interpolated grids).
    """

    widths: dict
    seconds: dict
    fixed: float
    frames: list[int]
    batch: int
    repeats: int
    multiple: int = 1

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

    def predict(self, layers: list[Layer]) -> float:
        """Predicted seconds of a model whose prunable layers (:func:`encoder_layers` of it) are ``layers``, at
        their current widths: ``fixed`` plus one entry per layer."""
        return self.fixed + sum(self.lookup(layer, layer.width, layers[0].width) for layer in layers)

    @classmethod
    def load(cls, path: str | Path, layers: list[Layer], multiple: int | None = 1) -> "LatencyTable":
        """Read a table written by :meth:`save` and check that it was measured for a model with the dense widths
        of ``layers`` and with width multiple ``multiple`` (None: any)."""
        try:
            table = cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as error:
            raise OSError(f"{path}: cannot read latency table ({error.strerror})") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a latency table ({error})") from error
        for key, dense in _dense_widths(layers).items():
            if key not in table.widths or table.widths[key][-1] != dense:
                raise ValueError(f"{path}: widths.{key} does not end at this model's dense width {dense}")
        if multiple is not None and table.multiple != multiple:
            raise ValueError(f"{path}: measured with width multiple {table.multiple}, not {multiple} "
                             "(delete it to measure again, or pass that --width-multiple)")
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


def width_grid(dense: int, minimum: int, points: int, multiple: int = 1) -> list[int]:
    """Ascending distinct ints from about ``minimum`` to ``dense``: with ``multiple`` > 1 and ``dense`` at least two
    multiples, every multiple of it from the first one >= ``minimum``, and ``dense``; else ``points`` evenly spaced
    widths (every width when there are few)."""
    if multiple > 1 and dense >= 2 * multiple:
        first = max(multiple, -(-minimum // multiple) * multiple)
        return sorted(set(range(first, dense + 1, multiple)) | {dense})
    return sorted({int(round(w)) for w in np.linspace(minimum, dense, min(points, dense - minimum + 1))})


def _resized_model(model, c1: int, c2: int, block_widths: dict):
    """A copy of ``model`` (fresh weights where resized) whose front end has widths c1, c2 and whose blocks have
    ``block_widths`` (``{kind: width}``) in every block, in eval mode."""
    copy_ = copy.deepcopy(model)
    blocks = [{short: block_widths[kind] for short, kind, _ in BLOCK_LAYERS} for _ in copy_.encoder.encoders]
    resize_encoder(copy_.encoder, {"subsampling": [c1, c2], "blocks": blocks})
    return copy_.eval()


def _models(model, widths: dict, dense: dict) -> dict:
    """The models to time: key ``("front", c1, c2)`` (blocks dense), ``(kind, w)`` (every layer of that kind at w,
    the rest dense) and ``"dense"``."""
    blocks_dense = {kind: dense[kind] for kind in BLOCK_KINDS}
    models = {"dense": model}
    for c1 in widths["subsampling.0"]:
        for c2 in widths["subsampling.1"]:
            models["front", c1, c2] = _resized_model(model, c1, c2, blocks_dense)
    for kind in BLOCK_KINDS:
        for w in widths[kind]:
            models[kind, w] = _resized_model(model, dense["subsampling.0"], dense["subsampling.1"],
                                             {**blocks_dense, kind: w})
    return models


def time_interleaved(runs: dict, repeats: int) -> dict:
    """Median seconds of each zero-argument callable of ``runs``, timed in turn ``repeats`` times (interleaved, so
    a slowdown of the machine hits every entry alike), each timed call right after an untimed call of the same
    callable: decoding runs one model over batch after batch, so its caches, allocator and oneDNN kernels are warm
    for that model, and a call that follows another model's would charge it their eviction (tables timed that way
    predicted 1.2-1.9 times the speed-up that each pruned model measured in decoding: benchmarks/results/
    autodfp_latency_check/)."""
    samples: dict = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            run()
            started = time.perf_counter()
            run()
            samples[key].append(time.perf_counter() - started)
    return {key: statistics.median(v) for key, v in samples.items()}


def measure(model, layers: list[Layer], minimum: list[int], frames: list[int], batch: int = BATCH,
            repeats: int = 5, multiple: int = 1) -> LatencyTable:
    """Measure the table of ``model`` (a ConformerCTC; only its shapes are used, and its dense forward), whose
    prunable ``layers`` have per-layer ``minimum`` widths, in situ (module docstring). Runs on one thread (restores
    the thread count after)."""
    dense = _dense_widths(layers)
    lowest = {}
    for layer, m in zip(layers, minimum):
        lowest[table_key(layer)] = min(lowest.get(table_key(layer), m), m)
    widths = {key: width_grid(dense[key], lowest[key], GRID_POINTS[key], multiple) for key in dense}
    count = {key: sum(table_key(layer) == key for layer in layers) for key in dense}
    g = torch.Generator().manual_seed(0)
    inputs = [(torch.randn(batch, n, model.cmvn.mean.numel(), generator=g), torch.full((batch,), n, dtype=torch.long),
               torch.zeros(batch, dtype=torch.long)) for n in frames]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            models = _models(model.eval(), widths, dense)
            median = time_interleaved({key: (lambda m=m: [m(*batch_) for batch_ in inputs])
                                       for key, m in models.items()}, repeats)
    finally:
        torch.set_num_threads(threads)
    c1s, c2s = widths["subsampling.0"], widths["subsampling.1"]
    front = np.array([[median["front", c1, c2] for c2 in c2s] for c1 in c1s])
    seconds = {"subsampling.0": np.maximum.accumulate(front[:, 0] - front[0, 0]).tolist(),
               "subsampling.1": np.maximum.accumulate(np.maximum.accumulate(front - front[:, :1], axis=0),
                                                      axis=1).tolist()}
    for kind in BLOCK_KINDS:
        times = np.array([median[kind, w] for w in widths[kind]])
        seconds[kind] = np.maximum.accumulate((times - times[0]) / count[kind]).tolist()
    table = LatencyTable(widths, seconds, 0.0, list(frames), batch, repeats, multiple)
    dense_layers = sum(table.lookup(layer, layer.width, dense["subsampling.0"]) for layer in layers)
    table.fixed = max(0.0, median["dense"] - dense_layers)
    return table


def load_or_measure(model, layers: list[Layer], minimum: list[int], frames: list[int],
                    path: str | Path | None, multiple: int = 1) -> LatencyTable:
    """The table at ``path`` if it exists (checked against ``layers``, ``multiple`` and ``frames``), else a fresh
    :func:`measure`, written to ``path`` when one is given, so that every method of a recipe prunes against the same
    measurements."""
    if path is not None and Path(path).exists():
        table = LatencyTable.load(path, layers, multiple)
        if list(np.atleast_1d(table.frames)) != list(frames):
            raise ValueError(f"{path}: timed at input lengths {table.frames}, not {list(frames)} (delete it to measure "
                             "again, or pass those --latency-frames)")
        return table
    table = measure(model, layers, minimum, frames, multiple=multiple)
    if path is not None:
        table.save(path)
    return table
