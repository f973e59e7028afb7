"""What the AutoDFP search shows: the documented state vector, and the per-episode reward log and plot."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asrprune.model.conformer_layout import KINDS
from asrprune.model.store import save_model
from asrprune.pruning.autodfp.agent import STATE_FEATURES, PruningEnv, episode_records
from asrprune.pruning.autodfp.budget import Budget
from asrprune.pruning.autodfp.cli import autodfp
from tests.helpers.tiny_experiment import two_block_module


def test_the_state_vector_has_the_documented_features_at_every_layer():
    module = two_block_module()
    budget = Budget(module, "params", 0.5)
    env = PruningEnv(module, budget, evaluate=lambda plan: 1.0, reference=1.0)
    assert len(STATE_FEATURES) == 17 and len(set(STATE_FEATURES)) == 17
    assert env.observation_space.shape == (len(STATE_FEATURES),)
    obs, _ = env.reset()
    index = {name: i for i, name in enumerate(STATE_FEATURES)}
    rng = np.random.default_rng(0)
    for layer in budget.layers:
        assert obs.shape == (len(STATE_FEATURES),) and env.observation_space.contains(obs)
        assert obs[[index[f"kind_{k}"] for k in KINDS]].tolist() == [float(layer.kind == k) for k in KINDS]
        assert 0 <= obs[index["importance_weak_half"]] <= 0.5
        assert obs[index["remaining_budget"]] >= -1e-6  # the action walls keep the budget reachable
        obs, _, done, _, _ = env.step(rng.uniform(0, 1, size=2))
    assert done


@pytest.mark.parametrize("method", ["random", "agent"])
def test_a_search_writes_its_reward_per_episode_and_a_plot(method, tmp_path):
    dense = tmp_path / "dense.ckpt"
    save_model(two_block_module().stored(), dense)
    out = tmp_path / f"{method}.ckpt"
    summary = autodfp(dense, method, 0.6, out, episodes=5, utterances=2, reconstruction="fold,ffn=lstsq")
    assert summary["reconstruction"] == "subsampling=fold,ffn=lstsq,heads=fold,conv=fold"
    lines = [json.loads(line) for line in (tmp_path / f"{method}.ckpt.episodes.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in lines] == list(range(1, 7))
    assert [r["reward"] for r in lines] == pytest.approx(summary["episode_rewards"], abs=1e-4)
    assert lines[-1]["best_reward"] == max(r["reward"] for r in lines)
    phases = {r["phase"] for r in lines}
    assert phases == ({"random"} if method == "random" else {"warmup", "learning", "final"})
    assert (tmp_path / f"{method}.ckpt.rewards.png").read_bytes()[:4] == b"\x89PNG"


def test_episode_records_mark_the_agent_phases():
    from asrprune.pruning.autodfp.agent import SearchResult

    result = SearchResult([], 0.1, 0.2, rewards=[-2.0, -1.0, -1.5, -0.5])
    records = episode_records(result, "agent", warmup_episodes=2)
    assert [r["phase"] for r in records] == ["warmup", "warmup", "learning", "final"]
    assert [r["best_reward"] for r in records] == [-2.0, -1.0, -1.0, -0.5]
    assert records[0]["distortion"] == pytest.approx(0.4)


def test_every_decision_of_an_episode_is_stored_with_its_episode_s_standardised_reward():
    from types import SimpleNamespace

    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer

    from asrprune.pruning.autodfp.agent import EpisodeCredit

    steps = 3
    space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
    buffer = ReplayBuffer(10, space, space, device="cpu")
    for _ in range(2 * steps):  # two episodes, stored as SB3 stores them: zero reward but on the last step
        buffer.add(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(1), np.zeros(1), [{}])
    credit = EpisodeCredit(SimpleNamespace(rewards=[-1.0, -0.5]), steps)
    credit.model = SimpleNamespace(replay_buffer=buffer)
    credit.on_rollout_end()
    assert buffer.rewards[:6, 0].tolist() == [-1.0] * 3 + [1.0] * 3  # (r - mean) / std, every decision
    assert buffer.rewards[6:, 0].tolist() == [0.0] * 4  # nothing beyond what is stored


def test_an_unknown_credit_is_refused():
    from asrprune.pruning.autodfp.agent import search

    module = two_block_module()
    with pytest.raises(ValueError, match="credit 'bogus'"):
        search(module, Budget(module, "params", 0.5), lambda model: 1.0, episodes=1, credit="bogus")
