"""The AutoDFP agent: Soft Actor-Critic (stable-baselines3) walking the prunable layers one step per layer.

Per layer the agent sees an AMC-like state (:data:`STATE_FEATURES`: position, unit type, width, the layer's share
of the cost, the ratio committed so far, the two action walls, the target, the remaining budget, its previous
action) plus the layer's channel-similarity descriptors (:func:`.similarity.similarity_stats`: mean
nearest-neighbour cosine and the DBSCAN clustered fraction) and a weight-only sensitivity proxy (the share of the
layer's L1 importance held by its weaker half of units: how much the units that pruning removes first carry; no
data-driven per-layer sensitivity is measured), and chooses
two continuous actions: where to place the layer's keep count between its two action walls
(:meth:`.budget.Budget.keep_range`) and the reconstruction strength (0..1, the coefficient of the compensation
of :mod:`.reconstruction` in the layer's mode: by default the least-squares refit, and none for conv-module
channels, which are removed without compensation). The walls make every episode meet the budget by construction
and spend all of it.
The reward arrives after the last layer: minus the output distortion (:class:`.distortion.OutputDistortion`) of
the pruned model, divided by the distortion of uniform L1 pruning at the same budget (-1: as good as uniform L1).
By default every layer decision of the episode is credited with that reward (:class:`EpisodeCredit`, AMC's credit
assignment); with it the agent's mean reward rises within a search, without it (``credit="terminal"``) it did not
(README: AutoDFP).
The best plan seen during the search (the final deterministic policy's episode included) is returned, as AMC keeps
its best episode. :func:`random_search` is the ablation: the same environment and number of evaluated plans with
uniformly random actions, to tell what SAC's learning adds over sampling inside the action walls.

Both searches are resumable: given a ``state`` file (:class:`SearchState`) they save everything the rest of the
search depends on after every episode (for SAC: the agent with its optimizers, the replay buffer, the random
generators; for random search: the generator), atomically, and a search started again with the same settings
continues after the last saved episode and ends exactly as the uninterrupted search would (same reward history,
same best plan).
"""
from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from asrprune.model.conformer_layout import KINDS
from asrprune.pruning.autodfp.baselines import uniform_plan
from asrprune.pruning.autodfp.budget import Budget
from asrprune.pruning.autodfp.prune import LayerPlan, prune_module, unit_state
from asrprune.pruning.autodfp.reconstruction import LstsqContext, reconstruction_modes
from asrprune.pruning.autodfp.similarity import importance, signature, similarity_stats
from asrprune.files import CorruptCheckpoint, atomic_torch_save, atomic_write, read_checkpoint, warn


# The agent's observation, one float per name, in this order (one-hot unit kinds expanded from KINDS).
STATE_FEATURES = (
    "position",  # layer index / (layers - 1)
    *(f"kind_{kind}" for kind in KINDS),  # one-hot unit type
    "width",  # dense width / widest layer
    "cost_share",  # the layer's share of the dense cost
    "ratio_committed",  # preserved ratio with the layers so far as chosen and the rest dense
    "wall_most",  # upper action wall / width
    "wall_fewest",  # lower action wall / width
    "preserve",  # the target ratio
    "remaining_budget",  # target minus the ratio with the rest at its minimum widths: budget still to spend
    "previous_keep", "previous_strength",  # the previous layer's action
    "similarity_nearest_cosine", "similarity_clustered_fraction",  # .similarity.similarity_stats
    "importance_weak_half",  # share of the layer's L1 importance in its weaker half of units (sensitivity proxy)
)


def weak_half_share(state: dict, layer) -> float:
    """Share of ``layer``'s total L1 importance held by its weaker half of units (0.5: all units alike; near 0:
    a few strong units carry the layer, so pruning the weak ones is cheap)."""
    scores = importance(state, layer, layer.width).sort().values
    total = float(scores.sum())
    return float(scores[: layer.width // 2].sum()) / total if total > 0 else 0.5


@dataclass
class SearchResult:
    """Best ``plan`` found, its ``distortion`` (nats/frame), the uniform-L1 ``reference`` distortion, the reward of
    every episode, and the search's wall time in seconds."""

    plan: list[LayerPlan]
    distortion: float
    reference: float
    rewards: list[float] = field(default_factory=list)
    seconds: float = 0.0


class PruningEnv(gym.Env):
    """One episode = one pass over the layers of ``budget``; ``evaluate(plan) -> distortion`` scores a plan."""

    def __init__(self, module, budget: Budget, evaluate, reference: float):
        super().__init__()
        self.module, self.budget, self.evaluate, self.reference = module, budget, evaluate, reference
        layers = budget.layers
        state = unit_state(module.model)
        self.stats = [(*similarity_stats(signature(state, layer, layer.width)[0]), weak_half_share(state, layer))
                      for layer in layers]
        dense_costs = budget.per_layer(budget.dense)
        self.cost_share = [c / budget.dense_cost for c in dense_costs]
        self.max_width = max(budget.dense)
        self.plan: list[LayerPlan] = []
        self.previous = (1.0, 0.0)
        self.observation_space = gym.spaces.Box(-1.0, 2.0, shape=self._observe().shape, dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.best: tuple[float, list[LayerPlan]] | None = None
        self.rewards: list[float] = []

    def _observe(self) -> np.ndarray:
        b, t = self.budget, len(self.plan)
        layer = b.layers[t]
        widths = [p.keep for p in self.plan]
        fewest, most = b.keep_range(widths)
        kind = [float(layer.kind == k) for k in KINDS]
        obs = [t / (len(b.layers) - 1), *kind, layer.width / self.max_width, self.cost_share[t],
               b.ratio(widths + b.dense[t:]), most / layer.width, fewest / layer.width, b.preserve,
               b.preserve - b.ratio(widths + b.minimum[t:]), *self.previous, *self.stats[t]]
        assert len(obs) == len(STATE_FEATURES)
        return np.asarray(obs, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.plan = []
        self.previous = (1.0, 0.0)
        return self._observe(), {}

    def decide(self, action: np.ndarray) -> LayerPlan:
        """The layer decision of ``action`` (keep fraction, strength): the fraction places the keep count between
        the two action walls (:meth:`.budget.Budget.keep_range`), at the nearest width the budget allows."""
        keep_fraction, strength = float(np.clip(action[0], 0, 1)), float(np.clip(action[1], 0, 1))
        fewest, most = self.budget.keep_range([p.keep for p in self.plan])
        keep = self.budget.snap(len(self.plan), fewest + keep_fraction * (most - fewest), fewest, most)
        return LayerPlan(keep, strength)

    def step(self, action):
        step = self.decide(action)
        self.plan.append(step)
        self.previous = (float(action[0]), float(action[1]))
        if len(self.plan) < len(self.budget.layers):
            return self._observe(), 0.0, False, False, {}
        distortion = self.evaluate(self.plan)
        reward = -distortion / self.reference
        self.rewards.append(reward)
        if self.best is None or distortion < self.best[0]:
            self.best = (distortion, list(self.plan))
        # The observation after the last layer is never acted on; repeat the last layer's to keep the shape.
        self.plan = self.plan[:-1]
        obs = self._observe()
        self.plan.append(step)
        return obs, reward, True, False, {"distortion": distortion}


def _environment(module, budget: Budget, distortion, reconstruction=None) -> PruningEnv:
    """The search environment; its reference is the distortion of uniform L1 pruning at the same budget. Plans are
    applied with ``reconstruction`` (:func:`.reconstruction.reconstruction_modes`; None: the fold)."""
    modes = reconstruction_modes(reconstruction)
    context = LstsqContext(module.model) if "lstsq" in modes.values() else None

    def evaluate(plan: list[LayerPlan]) -> float:
        return distortion(prune_module(module, plan, reconstruction=modes, context=context).model)

    return PruningEnv(module, budget, evaluate, evaluate(uniform_plan(budget, "l1")))


def _result(env: PruningEnv, started: float, seconds_before: float = 0.0) -> SearchResult:
    best_distortion, plan = env.best
    return SearchResult(plan, best_distortion, env.reference, env.rewards,
                        seconds_before + time.perf_counter() - started)


class SearchState:
    """The saved state of a search after its latest whole episode: one file (``path``, written atomically with
    :func:`asrprune.files.atomic_torch_save`, so a kill leaves the previous episode's state) that
    holds the search's ``settings`` (anything that changes the search: a state saved with other settings is not
    resumed), the episodes done, the reward history, the best plan so far, the seconds spent and what the search
    itself needs (:func:`search`, :func:`random_search`).

    ``load()`` returns the saved state, or None (no file, other settings, or an unreadable file: reported in one
    line, the search starts over); ``remove()`` deletes it once the search's result is stored elsewhere.
    """

    def __init__(self, path: str | Path, settings: dict):
        self.path, self.settings = Path(path), dict(settings)

    def load(self) -> dict | None:
        for temp in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a save that a kill interrupted
            temp.unlink(missing_ok=True)
        if not self.path.exists():
            return None
        try:
            state = read_checkpoint(self.path)
        except CorruptCheckpoint as error:
            warn(f"warning: {error.path}: {error.detail}; the search starts over")
            return None
        if state.get("settings") != self.settings:
            warn(f"warning: {self.path}: saved by a search with other settings; the search starts over")
            return None
        print(f"{self.path}: resuming the search after episode {state['episodes_done']}", flush=True)
        return state

    def save(self, env: PruningEnv, seconds: float, **search_state) -> None:
        distortion, plan = env.best
        atomic_torch_save({
            "settings": self.settings, "episodes_done": len(env.rewards), "rewards": list(env.rewards),
            "best": (distortion, [(p.keep, p.strength) for p in plan]), "seconds": seconds, **search_state,
        }, self.path)

    @staticmethod
    def restore(env: PruningEnv, state: dict) -> float:
        """Put the saved rewards and best plan back into ``env``; return the seconds spent before."""
        env.rewards = list(state["rewards"])
        distortion, plan = state["best"]
        env.best = (distortion, [LayerPlan(keep, strength) for keep, strength in plan])
        return state["seconds"]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _global_rng_states() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_global_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


# How an episode's reward reaches the agent's decisions (``search(credit=...)``).
CREDITS = ("episode", "terminal")


class EpisodeCredit(BaseCallback):
    """AMC's credit assignment (He et al., 2018): every layer decision of an episode is stored with that episode's
    reward, and the critic regresses it without bootstrapping (``gamma = 0``), so each decision is judged by the plan
    it was part of, not through the episode's other, zero-reward steps (17 on the mini model). Rewards are
    standardised by the mean and standard deviation of all episodes so far (AMC subtracts a moving baseline): plans
    differ by a few tenths of the uniform-L1 distortion, too little against SAC's entropy bonus to steer the policy
    unscaled.

    Runs at the end of every episode, before SAC's gradient steps (``train_freq=(1, "episode")``); all stored
    rewards are rewritten from ``env.rewards``, so nothing beyond the environment's history is needed to resume."""

    def __init__(self, env: PruningEnv, steps: int):
        super().__init__()
        self.env, self.steps = env, steps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        rewards = np.asarray(self.env.rewards, dtype=np.float32)
        scaled = (rewards - rewards.mean()) / max(float(rewards.std()), 1e-3)
        buffer = self.model.replay_buffer
        stored = buffer.buffer_size if buffer.full else buffer.pos
        buffer.rewards[:stored, 0] = np.repeat(scaled, self.steps)[:stored]


def search(module, budget: Budget, distortion, episodes: int = 200, warmup_episodes: int = 40,
           seed: int = 0, state: SearchState | None = None, reconstruction=None,
           credit: str = "episode") -> SearchResult:
    """Run SAC for ``episodes`` episodes (the first ``warmup_episodes`` with random actions) on ``module`` under
    ``budget``; ``distortion(model) -> float`` scores a pruned ConformerCTC. ``episodes + 1`` plans are evaluated
    (the final deterministic policy's episode too). Deterministic for a given seed on one thread.

    ``credit``: ``"episode"`` (:class:`EpisodeCredit`, the default) or ``"terminal"`` (the reward on the episode's
    last step only, discounted by 0.99 back through the layers, one gradient step per layer; the earlier agent).

    With ``state``, the search is saved after every episode and a saved search is continued. SAC learns one
    episode per ``learn`` call (``reset_num_timesteps=False``: the step counter, the warm-up and the last
    observation carry on, so the calls add up to one long ``learn``); after each the state holds the agent
    (``SAC.save``: policy, critics, target networks, optimizers, entropy coefficient, step counters, last
    observation), its replay buffer (``save_replay_buffer``) and the generators SAC draws from (torch: policy
    sampling; NumPy's global one: replay-buffer batches; the action space's: warm-up actions; Python's). ``SAC.load``
    re-seeds them all (``_setup_model``), so they are restored after it; the resumed search is then bit-exact.
    """
    if credit not in CREDITS:
        raise ValueError(f"credit {credit!r}: choose one of {CREDITS}")
    started = time.perf_counter()
    torch.manual_seed(seed)
    env = _environment(module, budget, distortion, reconstruction)
    steps = len(budget.layers)
    saved = state.load() if state is not None else None
    if saved is None:
        # The buffer holds every transition of the search (SB3's default preallocates a million, ~100 MB, and
        # would have to be written with every saved state); it never fills up, so its size changes nothing.
        schedule = (dict(gamma=0.0, train_freq=(1, "episode"), gradient_steps=-1) if credit == "episode"
                    else dict(gamma=0.99, train_freq=1, gradient_steps=1))
        agent = SAC("MlpPolicy", env, learning_starts=warmup_episodes * steps, batch_size=128, **schedule,
                    learning_rate=1e-3, policy_kwargs={"net_arch": [64, 64]},
                    buffer_size=(episodes + 1) * steps, seed=seed, device="cpu", verbose=0)
        before = 0.0
    else:
        agent = SAC.load(io.BytesIO(saved["agent"]), env=env, device="cpu")
        agent.load_replay_buffer(io.BytesIO(saved["replay_buffer"]))
        before = SearchState.restore(env, saved)
        _set_global_rng_states(saved["rng"])
        agent.action_space.np_random.bit_generator.state = saved["action_rng"]
    agent.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger makes a /tmp/SB3-* folder per run
    callback = EpisodeCredit(env, steps) if credit == "episode" else None
    while len(env.rewards) < episodes:
        agent.learn(total_timesteps=steps, reset_num_timesteps=False, callback=callback)
        if state is not None:
            model, buffer = io.BytesIO(), io.BytesIO()
            agent.save(model)
            agent.save_replay_buffer(buffer)
            state.save(env, before + time.perf_counter() - started, agent=model.getvalue(),
                       replay_buffer=buffer.getvalue(), rng=_global_rng_states(),
                       action_rng=agent.action_space.np_random.bit_generator.state)
    obs, _ = env.reset()
    for _ in range(steps):  # the final deterministic policy's episode also competes for the best plan
        action, _ = agent.predict(obs, deterministic=True)
        obs, *_ = env.step(action)
    return _result(env, started, before)


def random_search(module, budget: Budget, distortion, episodes: int = 200, seed: int = 0,
                  state: SearchState | None = None, reconstruction=None) -> SearchResult:
    """The ablation of :func:`search` without learning: ``episodes + 1`` episodes (as many plans as the agent
    evaluates) of actions drawn uniformly from [0, 1]^2 in the same environment (same action walls, budget and
    reward); the best plan wins. With ``state``, saved after every episode (with the generator's state) and
    continued exactly."""
    started = time.perf_counter()
    env = _environment(module, budget, distortion, reconstruction)
    rng = np.random.default_rng(seed)
    saved = state.load() if state is not None else None
    before = 0.0
    if saved is not None:
        before = SearchState.restore(env, saved)
        rng.bit_generator.state = saved["rng"]
    while len(env.rewards) < episodes + 1:
        env.reset()
        done = False
        while not done:
            _, _, done, _, _ = env.step(rng.uniform(0.0, 1.0, size=2))
        if state is not None:
            state.save(env, before + time.perf_counter() - started, rng=rng.bit_generator.state)
    return _result(env, started, before)


def episode_records(result: SearchResult, method: str, warmup_episodes: int = 0) -> list[dict]:
    """One dict per evaluated plan of a search: ``episode`` (1-based), ``phase`` (agent: ``warmup`` (random
    actions), ``learning``, ``final`` (the deterministic policy's episode); random search: ``random``), ``reward``
    (-distortion / uniform-L1 distortion), ``distortion`` (nats/frame) and ``best_reward`` so far."""
    records, best = [], -float("inf")
    last = len(result.rewards)
    for i, reward in enumerate(result.rewards, start=1):
        best = max(best, reward)
        if method != "agent":
            phase = "random"
        else:
            phase = "final" if i == last else "warmup" if i <= warmup_episodes else "learning"
        records.append({"episode": i, "phase": phase, "reward": round(reward, 6),
                        "distortion": round(-reward * result.reference, 6), "best_reward": round(best, 6)})
    return records


def write_episode_log(result: SearchResult, method: str, prefix: str | Path, warmup_episodes: int = 0) -> list[Path]:
    """Write the per-episode rewards of a search to ``<prefix>.episodes.jsonl`` (:func:`episode_records`) and a plot
    to ``<prefix>.rewards.png`` (reward per episode, best so far, the uniform-L1 level -1); returns both paths."""
    import json

    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    from asrprune.files import atomic_write_text

    records = episode_records(result, method, warmup_episodes)
    jsonl, png = Path(f"{prefix}.episodes.jsonl"), Path(f"{prefix}.rewards.png")
    atomic_write_text(jsonl, "".join(json.dumps(r) + "\n" for r in records))
    figure, axis = plt.subplots(figsize=(7, 3.8))
    episodes = [r["episode"] for r in records]
    axis.plot(episodes, [r["reward"] for r in records], ".", color="tab:gray", label=f"{method} episode")
    axis.plot(episodes, [r["best_reward"] for r in records], color="tab:blue", label="best so far")
    axis.axhline(-1.0, color="tab:red", linestyle="--", linewidth=1, label="uniform L1")
    if method == "agent" and warmup_episodes:
        axis.axvline(warmup_episodes + 0.5, color="black", linewidth=0.8, linestyle=":", label="end of warm-up")
    axis.set(title=f"AutoDFP {method} search", xlabel="episode", ylabel="reward (-KL / KL of uniform L1)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    atomic_write(png, lambda f: figure.savefig(f, format="png", dpi=110))
    plt.close(figure)
    return [jsonl, png]
