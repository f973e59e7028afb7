"""Fault injection: training, a pruning stage and an AutoDFP search killed (SIGKILL) at a random moment or halfway
through a checkpoint write, with the temp dir on another filesystem, then re-run: the re-run finishes exactly as an
uninterrupted run (same final step, weights, masks, schedule; same search rewards and plan); corrupt checkpoints
reported in one line with a fallback to the previous one; a full disk named in the error; a resume with another
trainer.max_steps refused in one line."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asrprune.cli import main
from asrprune.files import atomic_torch_save, atomic_write_json, read_checkpoint
from asrprune.model.store import load_model, save_model
from asrprune.pruning.autodfp import agent
from asrprune.pruning.masking.methods import Methods, Setup
from asrprune.pruning.masking.runner import load_method_config
from asrprune.training.checkpoints import resume_candidates
from asrprune.training.config import ConfigError, load_config
from asrprune.training.train import resume_checkpoint, train
from tests.helpers.tiny_experiment import TINY_OVERRIDES, InterruptAtStep, two_block_module

REPO = Path(__file__).resolve().parents[2]
FAULT_INJECTION = REPO / "tests" / "helpers" / "fault_injection.py"
# A filesystem other than the experiment's, where fsspec (Lightning's writer) would put its temporary file.
OTHER_FS_TMPDIR = "/dev/shm" if Path("/dev/shm").is_dir() else None


@pytest.fixture
def one_thread():
    """Runs in this process that are compared bit for bit with a killed subprocess's (OMP_NUM_THREADS=1,
    :func:`subprocess_env`) use one thread too: CPU kernels sum in another order on more threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_same_tensors(got: dict, expected: dict, what: str) -> None:
    assert got.keys() == expected.keys()
    differing = [key for key in expected if not torch.equal(got[key], expected[key])]
    assert not differing, f"{what}: {len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"


def set_args(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def subprocess_env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if OTHER_FS_TMPDIR:
        env["TMPDIR"] = OTHER_FS_TMPDIR
    return env


def wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Poll ``condition()`` every 50 ms until it holds; fail with the log's tail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run ended or timed out first (rc {process.poll()}): {log.read_text()[-2000:]}")
        time.sleep(0.05)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def all_named_checkpoints_load(checkpoints: Path) -> None:
    for path in checkpoints.glob("*.ckpt"):
        read_checkpoint(path, mmap=True)  # raises CorruptCheckpoint for a partial file


def test_kill_during_a_checkpoint_write_then_rerun_finishes_at_the_same_step_and_weights(tiny_data, tmp_path,
                                                                                         one_thread):
    exp, writing = tmp_path / "exp", tmp_path / "writing"
    overrides = TINY_OVERRIDES + ["trainer.max_steps=9", "trainer.val_check_interval=3"]
    # The write of step 6's checkpoint stalls halfway and is killed there.
    command = [
        sys.executable, str(FAULT_INJECTION), "step0000006.ckpt", str(writing), "asrprune.cli", "train",
        "--tokens", str(tiny_data["tokens"]), "--exp", str(exp), "--train", *map(str, tiny_data["train"]),
        "--dev", *map(str, tiny_data["dev"]), *set_args(overrides),
    ]
    log = tmp_path / "log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=subprocess_env())
        wait_for(writing.exists, process, log)
        kill(process)
    checkpoints = exp / "checkpoints"
    assert Path(writing.read_text()).name == "step0000006.ckpt"
    assert list(checkpoints.glob(".step0000006.ckpt.*.tmp")), "the write was not in the checkpoint's folder"
    assert not (checkpoints / "step0000006.ckpt").exists()
    all_named_checkpoints_load(checkpoints)

    config = load_config(None, overrides)
    best = train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp)
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["global_step"] == 9 and summary["steps_this_run"] == 6  # resumed at step 3, not from scratch
    last = read_checkpoint(checkpoints / "last.ckpt")
    assert last["global_step"] == 9
    assert not list(checkpoints.glob(".*.tmp"))
    assert best == checkpoints / "best.ckpt" and not list(checkpoints.glob("best-v*"))
    # Resumed mid-epoch (step 3 of 5 batches per epoch): the same batches, dropout and updates as without a kill.
    train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], tmp_path / "whole")
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    assert_same_tensors(last["state_dict"], whole["state_dict"], "weights after the resume")

    # Finished: a re-run does nothing and leaves the summary of the real run.
    before = (exp / "train_summary.json").read_bytes()
    assert train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp) == best
    assert (exp / "train_summary.json").read_bytes() == before


@pytest.fixture(scope="module")
def interrupted(tiny_data, tmp_path_factory) -> Path:
    """An experiment stopped before step 5 of 6, with step0000002.ckpt and step0000004.ckpt."""
    exp = tmp_path_factory.mktemp("interrupted") / "exp"
    config = load_config(None, TINY_OVERRIDES + ["trainer.max_steps=6"])
    with pytest.raises(SystemExit):
        train(config, tiny_data["train"], tiny_data["dev"], tiny_data["tokens"], exp, callbacks=[InterruptAtStep(5)])
    return exp


CORRUPTIONS = {
    "random bytes": lambda data: random.Random(0).randbytes(len(data)),
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_corrupt_newest_checkpoint_is_reported_in_one_line_and_the_previous_used(interrupted, tmp_path, capsys,
                                                                                 damage):
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(interrupted / "checkpoints", checkpoints, symlinks=True)
    newest = checkpoints / "step0000004.ckpt"
    newest.write_bytes(CORRUPTIONS[damage](newest.read_bytes()))
    capsys.readouterr()
    assert resume_checkpoint(checkpoints) == checkpoints / "step0000002.ckpt"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and str(newest) in lines[0] and "resuming from the previous" in lines[0], lines


def test_rerun_after_a_truncated_newest_checkpoint_finishes(tiny_data, interrupted, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(interrupted, exp, symlinks=True)
    newest = exp / "checkpoints" / "step0000004.ckpt"
    newest.write_bytes(newest.read_bytes()[:1000])
    train(load_config(None, TINY_OVERRIDES + ["trainer.max_steps=6"]), tiny_data["train"], tiny_data["dev"],
          tiny_data["tokens"], exp)
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["global_step"] == 6 and summary["steps_this_run"] == 4  # from step 2
    assert all(read_checkpoint(p, mmap=True) for p in resume_candidates(exp / "checkpoints"))


@pytest.fixture(scope="module")
def pruning_setup(tiny_data, tiny_model, tmp_path_factory) -> Setup:
    """A DAP setup of 10 steps re-evaluating the masks every 2 steps, from the shared tiny model."""
    root = tmp_path_factory.mktemp("prune")
    config = load_config(None, TINY_OVERRIDES + ["data.single_language_batches=true"])
    method_config = root / "method.yaml"
    method_config.write_text("interval: 2\n", encoding="utf-8")
    return Setup(tiny_model.checkpoint, tiny_data["tokens"].parent, ["de", "fr"], config,
                 load_method_config(str(method_config), 1.0, 2, 10), method_config)


def dap_stage(setup: Setup, exp: Path) -> tuple[tuple, dict]:
    """Run (or resume) the DAP stage in ``exp``: (final step, re-evaluation steps and sparsities, sparsity per
    language) of its last checkpoint, and its state dict (weights and per-language masks)."""
    outcome = Methods(Setup(**{**vars(setup), "exp": exp}), 0.6).run("dap", "middle", "magnitude")
    last = read_checkpoint(outcome.models["de"])
    history = next(v["history"] for k, v in last["callbacks"].items() if k.startswith("AdaptiveMasking"))
    model = load_model(outcome.models["de"]).model
    sparsity = model.masks.statistics(model.languages)["sparsity"]
    return (last["global_step"], [(h["step"], round(h["sparsity"], 6)) for h in history],
            {lang: round(s, 3) for lang, s in sparsity.items()}), last["state_dict"]


def test_pruning_stage_killed_at_a_random_moment_resumes_with_the_same_schedule_masks_and_weights(
        pruning_setup, tmp_path, one_thread):
    """Killed after its first checkpoint (step 2 of 4 batches per epoch; later ones at 4, 6, 8 and 10: resumes
    mid-epoch and at an epoch's end), re-run: the same masks and weights as an uninterrupted stage, bit for bit."""
    setup = pruning_setup
    seed = random.SystemRandom().randrange(10**6)
    delay = random.Random(seed).uniform(0.0, 3.0)
    exp = tmp_path / "killed"
    command = [
        sys.executable, "-m", "asrprune.cli", "prune", "run", "--method", "dap", "--criterion", "magnitude",
        "--sparsity", "0.6", "--dense-checkpoint", str(setup.dense_checkpoint), "--data", str(setup.data),
        "--langs", "de", "fr", "--steps", "10", "--config", str(setup.exp), "--exp", str(exp),
        *set_args(TINY_OVERRIDES + [
            "data.single_language_batches=true"]),
    ]
    stage = exp / "sparsity60" / "dap_middle_magnitude"
    log = tmp_path / "log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=subprocess_env())
        wait_for(lambda: any((stage / "checkpoints").glob("step*.ckpt")), process, log)
        time.sleep(delay)  # a random moment after the first checkpoint: training, a write, evaluation or done
        kill(process)
    all_named_checkpoints_load(stage / "checkpoints")
    resumed_from = read_checkpoint(resume_checkpoint(stage / "checkpoints"), mmap=True)["global_step"]
    (got, got_state), (expected, expected_state) = dap_stage(setup, exp), dap_stage(setup, tmp_path / "whole")
    killed = f"killed {delay:.2f} s after the first checkpoint, resumed from step {resumed_from} (seed {seed})"
    assert got == expected, killed
    masks = {k: v for k, v in expected_state.items() if k.endswith(".masks")}
    assert masks and all(v.dtype == torch.bool for v in masks.values())
    assert_same_tensors({k: got_state[k] for k in masks}, masks, f"masks, {killed}")
    assert_same_tensors(got_state, expected_state, f"weights, {killed}")
    assert got[0] == 10 and got[2] == {"de": 0.6, "fr": 0.6} and [s for s, _ in got[1]] == [2, 4, 6, 8]
    assert json.loads((stage / "stage.json").read_text())["steps"] == 10


def test_resuming_with_another_max_steps_is_refused_in_one_line_before_any_work(tiny_data, interrupted, tiny_model,
                                                                               tmp_path, capsys):
    """The one-cycle LR schedule restored from the checkpoint has the run's first max_steps: torch would fail past
    its end ("Tried to step N times") without naming the setting."""
    exp = tmp_path / "exp"
    shutil.copytree(interrupted, exp, symlinks=True)
    files = sorted(p.relative_to(exp) for p in exp.rglob("*"))
    capsys.readouterr()
    assert main(["train", "--tokens", str(tiny_data["tokens"]), "--exp", str(exp), "--train", *map(str, tiny_data["train"]),
                 "--dev", *map(str, tiny_data["dev"]), *set_args(TINY_OVERRIDES + ["trainer.max_steps=8"])]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("asrprune train: error: trainer.max_steps=8, but the run in")
    assert "started with trainer.max_steps=6" in lines[0] and "step0000004.ckpt is at step 4" in lines[0]
    assert "--init" in lines[0] and "new experiment folder" in lines[0]
    assert sorted(p.relative_to(exp) for p in exp.rglob("*")) == files  # nothing written: no work started

    finished = tmp_path / "finished"  # a run that reached its steps, asked for 2 more
    shutil.copytree(tiny_model.exp, finished, symlinks=True)
    config, steps, more = tiny_model.config, tiny_model.steps, tiny_model.steps + 2
    with pytest.raises(ConfigError, match=rf"trainer.max_steps={more}, .*started with trainer.max_steps={steps}"):
        train({**config, "trainer": {**config["trainer"], "max_steps": more}}, tiny_data["train"], tiny_data["dev"],
              tiny_data["tokens"], finished)


@pytest.mark.parametrize("method", ["agent", "random"])
def test_autodfp_search_killed_at_a_random_moment_resumes_to_the_same_result(method, tmp_path, one_thread):
    """SIGKILL at a random moment after the search saved its first episode; the re-run continues after the last
    saved episode and ends with the rewards, plan and pruned weights of an uninterrupted search."""
    dense = tmp_path / "dense.ckpt"
    save_model(two_block_module().stored(), dense)

    def command(out: Path) -> list[str]:
        return ["autodfp", "--checkpoint", str(dense), "--method", method, "--preserve", "0.5", "--budget",
                "params", "--episodes", "30", "--utterances", "2", "--out", str(out)]

    seed = random.SystemRandom().randrange(10**6)
    delay = random.Random(seed).uniform(0.0, 1.5)
    out = tmp_path / "killed" / f"{method}.ckpt"
    state = Path(str(out) + ".search.pt")
    log = tmp_path / "log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "asrprune.cli", *command(out)], stdout=output,
                                   stderr=subprocess.STDOUT, env=subprocess_env())
        wait_for(state.exists, process, log)
        time.sleep(delay)  # a random moment: an episode, a state write, the pruning after the search, or done
        kill(process)
    killed = f"killed {delay:.2f} s after the first saved episode (seed {seed})"
    saves = []
    original_save = agent.SearchState.save

    def recording_save(self, env, *args, **kwargs):
        saves.append(len(env.rewards))
        return original_save(self, env, *args, **kwargs)

    done = read_checkpoint(state)["episodes_done"] if state.exists() else None
    agent.SearchState.save = recording_save
    try:
        assert main(command(out)) == 0
    finally:
        agent.SearchState.save = original_save
    if done is not None:  # killed during the search: resumed after its last saved episode, not from the start
        assert saves[:1] == ([done + 1] if done < 30 + (method == "random") else []), killed
    assert not state.exists() and not list(out.parent.glob(".*.tmp"))
    assert main(command(tmp_path / "whole" / f"{method}.ckpt")) == 0
    got = json.loads(Path(str(out) + ".json").read_text())
    expected = json.loads((tmp_path / "whole" / f"{method}.ckpt.json").read_text())
    assert len(got["episode_rewards"]) == 31
    for key in ("episode_rewards", "layers", "distortion", "achieved_ratio", "params"):
        assert got[key] == expected[key], f"{key}: {killed}"
    assert_same_tensors(read_checkpoint(out)["state_dict"],
                        read_checkpoint(tmp_path / "whole" / f"{method}.ckpt")["state_dict"], f"pruned, {killed}")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tiny tmpfs needs root")
def test_full_disk_names_the_file_and_keeps_the_previous_content(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        target = disk / "summary.json"
        atomic_write_json(target, {"global_step": 3})
        with pytest.raises(OSError, match="summary.json: could not write.*free some space") as error:
            atomic_write_json(target, {"padding": "x" * 200_000})
        assert error.value.errno == 28
        with pytest.raises(OSError, match="model.ckpt: could not write") as error:  # not torch's zip RuntimeError
            atomic_torch_save({"w": torch.zeros(100_000)}, disk / "model.ckpt")
        assert error.value.errno == 28
        assert json.loads(target.read_text()) == {"global_step": 3}
        assert [p.name for p in disk.iterdir()] == ["summary.json"]  # no temporary file left
    finally:
        subprocess.run(["umount", str(disk)])
