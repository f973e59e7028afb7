"""A stopped AutoDFP search continues after its last saved episode and ends exactly as an uninterrupted one; a state
saved with other settings, or an unreadable one, is not used."""
from __future__ import annotations

import pytest
import torch

from asrprune.pruning.autodfp.agent import SearchState, random_search, search
from asrprune.pruning.autodfp.budget import Budget
from asrprune.pruning.autodfp.distortion import OutputDistortion, synthetic_features
from asrprune.files import read_checkpoint
from tests.helpers.tiny_experiment import two_block_module

EPISODES, WARMUP = 6, 2


@pytest.fixture(scope="module")
def problem():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the searches it documents: deterministic for a seed on one thread
    module = two_block_module()
    feats, lengths = synthetic_features(module.model.cmvn.mean, module.model.cmvn.std, 2, 100)
    yield module, Budget(module, "params", 0.5), OutputDistortion(module.model, feats, lengths)
    torch.set_num_threads(threads)


class Stopped(Exception):
    pass


def stopping(distortion, calls: int):
    """``distortion`` that raises at its ``calls``-th call (the first scores the uniform L1 reference)."""
    count = [0]

    def scored(model):
        count[0] += 1
        if count[0] == calls:
            raise Stopped
        return distortion(model)

    return scored


def run(method: str, module, budget, distortion, state=None):
    if method == "agent":
        return search(module, budget, distortion, EPISODES, WARMUP, seed=3, state=state)
    return random_search(module, budget, distortion, EPISODES, seed=3, state=state)


@pytest.mark.parametrize("method", ["agent", "random"])
@pytest.mark.parametrize("stopped_in_episode", [2, 5])  # agent: during the warm-up, and once SAC learns
def test_a_stopped_search_resumes_after_its_last_episode_and_ends_exactly_as_a_whole_one(problem, tmp_path, method,
                                                                                       stopped_in_episode):
    module, budget, distortion = problem
    whole = run(method, module, budget, distortion)
    state = SearchState(tmp_path / "search.pt", {"seed": 3})
    with pytest.raises(Stopped):
        run(method, module, budget, stopping(distortion, 1 + stopped_in_episode), state)
    saved = read_checkpoint(state.path)
    assert saved["episodes_done"] == stopped_in_episode - 1
    assert saved["rewards"] == whole.rewards[: stopped_in_episode - 1]
    scored = []
    resumed = run(method, module, budget, lambda model: scored.append(1) or distortion(model), state)
    assert len(scored) == 1 + len(whole.rewards) - (stopped_in_episode - 1)  # the reference, then the rest only
    assert resumed.rewards == whole.rewards and len(resumed.rewards) == EPISODES + 1
    assert resumed.plan == whole.plan and resumed.distortion == whole.distortion


def test_a_state_with_other_settings_or_unreadable_is_not_used(problem, tmp_path, capsys):
    module, budget, distortion = problem
    path = tmp_path / "search.pt"
    with pytest.raises(Stopped):
        run("random", module, budget, stopping(distortion, 4), SearchState(path, {"seed": 3}))
    assert SearchState(path, {"seed": 4}).load() is None
    path.write_bytes(path.read_bytes()[:100])
    (tmp_path / ".search.pt.abc.tmp").write_bytes(b"partial")  # a save that a kill interrupted
    capsys.readouterr()
    assert SearchState(path, {"seed": 3}).load() is None
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "the search starts over" in lines[0]
    assert not list(tmp_path.glob(".*.tmp"))
    assert run("random", module, budget, distortion, SearchState(path, {"seed": 3})).rewards == \
        run("random", module, budget, distortion).rewards
