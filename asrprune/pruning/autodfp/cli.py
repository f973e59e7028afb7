"""``asrprune autodfp``: prune a trained checkpoint without data and without fine-tuning.

Methods: ``agent`` (SAC search over per-layer keep ratios and reconstruction strengths, :mod:`.agent`), ``random``
(its ablation: the same search with random actions), ``l1`` (uniform L1-norm pruning) and ``merge`` (uniform
pruning with the reconstruction at full strength), all under the same preserved-ratio budget (:mod:`.budget`). Writes a
checkpoint that ``asrprune decode`` reads like any other and a JSON summary next to it (``<out>.json``), both
atomically and the summary last: a summary with the same settings marks a finished run, which is not redone. The
agent and random searches save their state after every episode in ``<out>.search.pt`` (:class:`.agent.SearchState`);
a killed search run again with the same settings continues after its last saved episode and finishes with the same
episode rewards and plan as an uninterrupted one. The state file is removed once the summary is written. A search
also writes its reward per episode to ``<out>.episodes.jsonl`` and a plot to ``<out>.rewards.png``
(:func:`.agent.write_episode_log`). ``--reconstruction`` picks how pruned units are compensated, per unit kind
(:func:`.reconstruction.reconstruction_modes`; default ``lstsq,conv=none``, the best measured; summaries written
before the option existed were made with ``fold`` and are read as such).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from asrprune.cli_options import add_checkpoint, add_out, add_seed
from asrprune.files import atomic_write_json, read_json
from asrprune.model.conformer_layout import encoder_layers
from asrprune.model.store import save_model
from asrprune.pruning.autodfp.agent import (CREDITS, STATE_FEATURES, SearchState, random_search, search,
                                           write_episode_log)
from asrprune.pruning.autodfp.baselines import uniform_plan
from asrprune.pruning.autodfp.budget import BASE_METRICS, REFERENCE_FRAMES, Budget, minimum_widths
from asrprune.pruning.autodfp.distortion import OutputDistortion, calibration_features, synthetic_features
from asrprune.pruning.autodfp.latency import load_or_measure
from asrprune.pruning.autodfp.prune import prune_module
from asrprune.pruning.autodfp.reconstruction import DEFAULT_SPEC, LEGACY_SPEC, modes_text, reconstruction_modes
from asrprune.pruning.autodfp.units import layer_costs
from asrprune.training.lightning_module import CTCModule

METHODS = ("agent", "random", "l1", "merge")


def autodfp(checkpoint: str | Path, method: str, preserve: float, out: str | Path, metric: str = "params+flops",
            episodes: int = 300, seed: int = 0, utterances: int = 8, calibration: str | Path | None = None,
            latency_table: str | Path | None = None, reconstruction: str | None = None,
            credit: str = "episode", width_multiple: int = 1,
            latency_frames: tuple[int, ...] = (REFERENCE_FRAMES,)) -> dict:
    """Prune ``checkpoint`` with ``method`` to ``preserve`` (ratio of ``metric``), save to ``out``, return and
    write the summary (widths, strengths, ratios, MACs, parameters, distortion, search seconds). The latency
    metric reads its table from ``latency_table`` or measures it there (:func:`.latency.load_or_measure`).
    ``reconstruction``: the compensation modes (:func:`.reconstruction.reconstruction_modes`; None: its default);
    ``credit``: how the agent's episode reward reaches its decisions (:func:`.agent.search`); ``width_multiple``:
    every layer keeps a multiple of it or its dense width (:class:`.budget.Budget`; 1: any width);
    ``latency_frames``: the input lengths the latency table is timed at (:func:`.latency.measure`)."""
    if method not in METHODS:
        raise ValueError(f"--method {method!r}: choose one of {METHODS}")
    settings = dict(checkpoint=str(checkpoint), method=method, preserve=preserve, metric=metric, seed=seed,
                    utterances=utterances, calibration=str(calibration) if calibration else None)
    if width_multiple != 1:  # absent from the summaries of runs made before the option existed
        settings["width_multiple"] = width_multiple
    if "latency" in metric.split("+"):
        if not latency_frames or min(latency_frames) <= 0:
            raise ValueError(f"--latency-frames {list(latency_frames)}: give one or more positive frame counts")
        settings["latency_frames"] = list(latency_frames)
    modes = reconstruction_modes(reconstruction)
    settings["reconstruction"] = modes_text(modes)
    if method in ("agent", "random"):
        settings["episodes"] = episodes
    if method == "agent":
        settings["credit"] = credit
    finished = read_json(str(out) + ".json")
    if finished is not None:  # a summary without the key was written when the fold was the only reconstruction
        finished = {"reconstruction": LEGACY_SPEC, **finished}
    if finished is not None and Path(out).exists() and all(finished.get(k) == v for k, v in settings.items()):
        print(f"{out}: already pruned with these settings ({out}.json); nothing to do")
        search_state_path(out).unlink(missing_ok=True)  # left by a kill between the summary and its removal
        return finished
    module = CTCModule.from_file(checkpoint).eval()
    model = module.model
    layers = encoder_layers(model)
    table = (load_or_measure(model, layers, minimum_widths(layers), list(latency_frames), latency_table,
                             width_multiple) if "latency" in metric.split("+") else None)
    budget = Budget(module, metric, preserve, latency=table, multiple=width_multiple)
    if calibration is None:
        feats, lengths = synthetic_features(model.cmvn.mean, model.cmvn.std, utterances, REFERENCE_FRAMES, seed)
    else:
        feats, lengths = calibration_features(calibration, model.cmvn.mean.numel(), utterances)
    distortion = OutputDistortion(model, feats, lengths)
    started = time.perf_counter()
    summary: dict = {}
    state = None
    if method in ("agent", "random"):
        state = SearchState(search_state_path(out), {**settings, "latency_table": str(latency_table),
                                                     "state_features": len(STATE_FEATURES)})
        warmup = max(1, episodes // 5)
        result = (search(module, budget, distortion, episodes=episodes, warmup_episodes=warmup,
                         seed=seed, state=state, reconstruction=modes, credit=credit) if method == "agent"
                  else random_search(module, budget, distortion, episodes, seed, state=state, reconstruction=modes))
        plan = result.plan
        log = write_episode_log(result, method, out, warmup if method == "agent" else 0)
        summary.update(episodes=episodes, episode_rewards=[round(r, 4) for r in result.rewards],
                       l1_distortion=round(result.reference, 5), episode_log=[str(p) for p in log])
    else:
        plan = uniform_plan(budget, method)
    # A resumed search counts the seconds its earlier runs spent too (saved with its state).
    search_seconds = result.seconds if method in ("agent", "random") else time.perf_counter() - started
    pruned = prune_module(module, plan, reconstruction=modes)
    widths = [p.keep for p in plan]
    save_model(pruned.stored(), out)
    dense_costs, fixed = layer_costs(budget.layers, budget.dense, budget.dims, REFERENCE_FRAMES)
    costs, _ = layer_costs(budget.layers, widths, budget.dims, REFERENCE_FRAMES)
    summary.update(
        **settings,
        reward_inputs=("calibration data (NOT data-free): " + str(calibration)) if calibration else "synthetic",
        achieved_ratio=round(budget.ratio(widths), 5),
        macs=sum(costs) + fixed, dense_macs=sum(dense_costs) + fixed, reference_frames=REFERENCE_FRAMES,
        params=sum(p.numel() for p in pruned.parameters()), dense_params=sum(p.numel() for p in module.parameters()),
        distortion=round(distortion(pruned.model), 5), search_seconds=round(search_seconds, 2),
        layers={layer.name: {"width": layer.width, "keep": p.keep, "strength": round(p.strength, 3)}
                for layer, p in zip(budget.layers, plan)},
    )
    atomic_write_json(str(out) + ".json", summary)  # last: it marks the run as finished
    if state is not None:
        state.remove()
    return summary


def search_state_path(out: str | Path) -> Path:
    """Where the search for ``out`` saves its state after every episode: ``<out>.search.pt``."""
    return Path(str(out) + ".search.pt")


def run_cli(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    s = autodfp(args.checkpoint, args.method, args.preserve, args.out, args.budget, args.episodes, args.seed,
                args.utterances, args.calibration, args.latency_table, args.reconstruction, args.credit,
                args.width_multiple, tuple(args.latency_frames))
    print(f"{args.out}: {s['method']} preserved {s['metric']} ratio {s['achieved_ratio']:.3f} (budget "
          f"{s['preserve']}), {s['params']} parameters (dense {s['dense_params']}), {s['macs'] / 1e6:.0f} M MACs "
          f"(dense {s['dense_macs'] / 1e6:.0f} M), output KL {s['distortion']:.4f} nats/frame on "
          f"{s['reward_inputs']} inputs, {s['search_seconds']:.1f} s")


def register_cli(subparsers) -> None:
    """Add the ``autodfp`` sub-command."""
    parser = subparsers.add_parser(
        "autodfp",
        description="Remove feed-forward units, attention heads, conv-module channels and subsampling channels "
        "from a trained conformer without data and without fine-tuning, down to a preserved ratio of the whole "
        "model's parameters and MACs together (--budget params+flops, the default: both ratios at most the target), "
        "parameters only (--budget params), MACs only (--budget flops, for a 4 s utterance) or CPU latency "
        "(--budget latency: per-layer times measured in the whole model on random inputs on this CPU), or several "
        "joined by '+' (--budget params+flops+latency). The result is a "
        "smaller dense model. 'agent' searches per-layer keep ratios and reconstruction strengths with Soft "
        "Actor-Critic, rewarded by the output KL divergence to the original model on synthetic inputs drawn from "
        "the model's CMVN statistics (--calibration uses real features instead and is then not data-free).",
        epilog="example: asrprune autodfp --checkpoint exp/multi/checkpoints/best.ckpt --method agent "
        "--preserve 0.5 --out exp/autodfp/agent_0.5.ckpt",
    )
    add_checkpoint(parser, "the trained model to prune")
    parser.add_argument("--method", choices=METHODS, default="agent")
    parser.add_argument("--preserve", type=float, required=True, help="preserved ratio of the budget metric")
    parser.add_argument("--budget", default="params+flops",
                        help=f"what the preserved ratio counts: one of {', '.join(BASE_METRICS)} or several joined "
                        "by '+', each ratio at most the target (default params+flops; see "
                        "asrprune.pruning.autodfp.budget)")
    parser.add_argument("--latency-table", help="JSON latency table to read, or to measure and write if missing "
                        "(a budget with latency; without it the table is measured and not kept)")
    parser.add_argument("--latency-frames", type=int, nargs="+", default=[REFERENCE_FRAMES],
                        help="input lengths in frames (10 ms) the latency table times, one batch of 8 each, summed: "
                        "the lengths the model will decode, e.g. 150 250 350 450 (default: 400)")
    parser.add_argument("--width-multiple", type=int, default=1,
                        help="every layer of at least two multiples keeps a multiple of this many units (or all), "
                        "e.g. 16: the latency table is then measured at exactly those widths (default 1: any)")
    add_out(parser, "pruned checkpoint to write (summary in OUT.json; a search saves its state in OUT.search.pt "
            "after every episode and continues from it when re-run)")
    parser.add_argument("--episodes", type=int, default=300,
                        help="agent/random search episodes (one per model pruned)")
    add_seed(parser, "random seed of the search and of the synthetic inputs")
    parser.add_argument("--utterances", type=int, default=8, help="inputs the distortion is measured on")
    parser.add_argument("--calibration", help="data dir whose features replace synthetic inputs (NOT data-free)")
    parser.add_argument("--reconstruction", default=None,
                        help="how pruned units are compensated: none, fold (Neuron-Merging-like fold into the most "
                        "similar kept unit) or lstsq (closed-form least-squares refit of the next layer on synthetic "
                        "inputs from the model's own statistics); per unit kind as comma-separated kind=mode items "
                        f"over the default '{DEFAULT_SPEC}' (measured best; README: AutoDFP), e.g. 'fold,ffn=lstsq' "
                        "(kinds: subsampling, ffn, heads, conv)")
    parser.add_argument("--credit", choices=CREDITS, default="episode",
                        help="agent only: 'episode' gives every layer decision its episode's standardised reward "
                        "(AMC's credit assignment, no bootstrapping); 'terminal' rewards the last decision only, "
                        "discounted back through the layers (the earlier agent; README: AutoDFP)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.set_defaults(func=run_cli)
