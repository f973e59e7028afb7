"""Every training / pruning / config / checkpoint fault of issue 13 run through the ``asrprune`` command line, and
what the user sees: ``benchmarks/results/fault_table.md`` (case, the line shown, whether nothing was lost and how
that was checked). Bad data imports are benchmarks/bad_inputs.py's.

    .venv/bin/python benchmarks/fault_table.py [--out benchmarks/results/fault_table.md] [--work DIR]

Config and checkpoint cases call the CLI's ``main`` in this process; kills run ``python -m asrprune.cli`` in a
subprocess (temp dir on /dev/shm, another filesystem) and SIGKILL it halfway through a checkpoint write
(tests/helpers/fault_injection.py) or at a random moment, then run the same command again. The full-disk case needs root
(a 1 MiB tmpfs); it is marked as skipped otherwise. Tiny model and data (tests/helpers/tiny_experiment.py), a few minutes.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # asrprune and the tests' helpers (tests.helpers)

import torch  # noqa: E402

from asrprune.benchmarking.provenance import provenance, provenance_markdown  # noqa: E402
from asrprune.cli import main  # noqa: E402
from asrprune.files import read_checkpoint  # noqa: E402
from tests.helpers.tiny_experiment import TINY_OVERRIDES, make_tiny_data  # noqa: E402

# Lines a user reads among Lightning's progress output: asrprune's errors, warnings and notices.
SHOWN = re.compile(r"^(asrprune [\w-]+( \w+)?: error: |warning: |.*nothing to do|.*resuming the search after)")


@dataclass
class Row:
    case: str
    seen: str
    nothing_lost: bool | None  # None: not run here
    checked: str


def sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def shown(text: str) -> str:
    """The lines of ``text`` a user is meant to read (see :data:`SHOWN`), joined."""
    lines = [line.strip() for line in text.splitlines() if SHOWN.match(line.strip())]
    return " / ".join(lines) if lines else "(no message)"


def cli(argv: list[str]) -> tuple[int, str]:
    """Exit status of ``asrprune ARGV`` in this process and the lines it showed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as stop:
            status = stop.code
    return status, shown(out.getvalue() + "\n" + err.getvalue())


def popen(argv: list[str], log: Path, stall_at: str | None = None, signal_file: Path | None = None):
    """``asrprune ARGV`` in a subprocess (TMPDIR on /dev/shm), optionally stalled in the write of ``stall_at``."""
    prefix = [sys.executable, "-m"] if stall_at is None else [
        sys.executable, str(ROOT / "tests" / "helpers" / "fault_injection.py"), stall_at, str(signal_file)]
    env = {**os.environ, "TMPDIR": "/dev/shm", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*prefix, "asrprune.cli", *argv], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def wait_then_kill(process: subprocess.Popen, ready, delay: float = 0.0, timeout: float = 600.0) -> str:
    """SIGKILL ``process`` ``delay`` seconds after ``ready()`` holds; says when it was killed."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the process ended before the fault (rc {process.poll()})")
        time.sleep(0.05)
    time.sleep(delay)
    finished = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "after it finished" if finished else f"{delay:.1f} s after the first checkpoint"


def resumed(summary: dict, seen: str) -> str:
    """What a re-run after a kill shows: its messages (none expected) and where it resumed and ended."""
    start = summary["global_step"] - summary["steps_this_run"]
    note = "" if seen == "(no message)" else f"{seen}; "
    return f"{note}the re-run resumes at step {start} and ends at step {summary['global_step']}"


def all_checkpoints_load(folder: Path) -> bool:
    try:
        return all(read_checkpoint(p, mmap=True) is not None for p in folder.rglob("*.ckpt"))
    except ValueError:
        return False


def final_weights(exp: Path) -> dict:
    """The state dict (weights and mask buffers) of ``exp``'s last checkpoint."""
    return read_checkpoint(exp / "checkpoints" / "last.ckpt")["state_dict"]


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def summary_step(exp: Path) -> int:
    return json.loads((exp / "train_summary.json").read_text())["global_step"]


class Cases:
    """The cases, sharing a tiny data set and a trained tiny model under ``work``."""

    def __init__(self, work: Path):
        self.work = work
        self.data = make_tiny_data(work / "data")
        self.train_args = ["--train", *map(str, self.data["train"]), "--dev", *map(str, self.data["dev"]),
                           "--tokens", str(self.data["tokens"])]
        self.dense = work / "dense"
        status, seen = cli(["train", *self.train_args, "--exp", str(self.dense),
                            *sets(TINY_OVERRIDES + ["trainer.max_steps=6"])])
        assert status == 0, seen
        self.model = self.dense / "checkpoints" / "best.ckpt"

    def train(self, exp: Path, extra: list[str] = (), steps: int = 12) -> list[str]:
        return ["train", *self.train_args, "--exp", str(exp),
                *sets(TINY_OVERRIDES + [f"trainer.max_steps={steps}", "trainer.val_check_interval=3", *extra])]

    def config_error(self, case: str, argv_extra: list[str]) -> Row:
        exp = self.work / "bad_config"
        status, seen = cli(self.train(exp) + argv_extra)
        return Row(case, seen, status == 1 and not exp.exists(), "exit 1 before any work: no experiment folder, "
                   "no CMVN statistics")

    def config_rows(self) -> list[Row]:
        bad = self.work / "bad.yaml"
        bad.write_text("optim:\n  lr: 1.0e-3\n  warmup_fraktion: 0.1\n", encoding="utf-8")
        malformed = self.work / "malformed.yaml"
        malformed.write_text("trainer:\n  max_steps: [3\n  devices: 1\n", encoding="utf-8")
        rows = [
            self.config_error("misspelt trainer key (--set trainer.max_step=30)", sets(["trainer.max_step=30"])),
            self.config_error("misspelt optim key in the config file", ["--config", str(bad)]),
            self.config_error("misspelt ESPnet encoder key (model.encoder.num_block)",
                              sets(["model.encoder.num_block=2"])),
            self.config_error("misspelt SpecAug key (model.specaug.num_time_masks)",
                              sets(["model.specaug.num_time_masks=2"])),
            self.config_error("wrong value type (trainer.max_steps=abc)", sets(["trainer.max_steps=abc"])),
            self.config_error("malformed YAML", ["--config", str(malformed)]),
        ]
        method = self.work / "pathways.yaml"
        method.write_text("steps: 10\ncriteria:\n  saliency: {decai: 0.5}\n", encoding="utf-8")
        exp = self.work / "bad_method"
        status, seen = cli(["prune", "run", "--method", "dap", "--dense-checkpoint", str(self.model), "--data",
                            str(self.work / "data"), "--langs", "de", "fr", "--config", str(method), "--exp",
                            str(exp)])
        rows.append(Row("misspelt key in the pruning method config", seen, status == 1 and not exp.exists(),
                        "exit 1 before any work: no experiment folder"))
        return rows

    def checkpoint_rows(self) -> list[Row]:
        rows = []
        good = self.model.read_bytes()
        for name, damage in (("random bytes", random.Random(0).randbytes(len(good))),
                             ("truncated", good[: len(good) // 2]), ("empty", b"")):
            bad = self.work / f"{name.replace(' ', '_')}.ckpt"
            bad.write_bytes(damage)
            status, seen = cli(["decode", "--checkpoint", str(bad), "--data", str(self.data["test"][0]),
                                "--out", str(self.work / "decode_bad")])
            rows.append(Row(f"checkpoint of {name} (asrprune decode)", seen,
                            status == 1 and bad.read_bytes() == damage and not (self.work / "decode_bad").exists(),
                            "exit 1, the file untouched, no output folder"))
        return rows

    def kill_during_write(self) -> Row:
        exp, writing, log = self.work / "kill_write", self.work / "writing", self.work / "kill_write.log"
        wait_then_kill(popen(self.train(exp), log, "step0000006.ckpt", writing), writing.exists)
        intact = all_checkpoints_load(exp / "checkpoints")
        status, seen = cli(self.train(exp))
        summary = json.loads((exp / "train_summary.json").read_text())
        return Row("SIGKILL halfway through writing step0000006.ckpt (TMPDIR on /dev/shm), then the same command",
                   resumed(summary, seen), intact and status == 0 and summary["global_step"] == 12
                   and summary["steps_this_run"] == 9,
                   "every *.ckpt loads after the kill; the re-run resumed from step 3 and ended at step 12")

    def kill_at_random(self, rng: random.Random) -> Row:
        exp, log = self.work / "kill_random", self.work / "kill_random.log"
        delay = rng.uniform(0.0, 4.0)
        when = wait_then_kill(popen(self.train(exp, steps=30), log),
                              lambda: any((exp / "checkpoints").glob("step*.ckpt")), delay)
        intact = all_checkpoints_load(exp / "checkpoints")
        status, seen = cli(self.train(exp, steps=30))
        summary = json.loads((exp / "train_summary.json").read_text())
        whole = self.work / "whole_30"
        cli(self.train(whole, steps=30))
        return Row(f"SIGKILL at a random moment of a 30-step run ({when}), then the same command",
                   resumed(summary, seen),
                   intact and status == 0 and summary["global_step"] == 30
                   and same_tensors(final_weights(exp), final_weights(whole)),
                   "every *.ckpt loads; the re-run ended at step 30 with every weight equal to an uninterrupted "
                   "run's")

    def other_max_steps(self) -> Row:
        exp = self.work / "kill_random"  # the 30-step run above, its summary removed as if killed before the end
        (exp / "train_summary.json").unlink()
        status, seen = cli(self.train(exp, steps=40))
        return Row("resuming the 30-step run (its summary removed, as if killed before it) with "
                   "--set trainer.max_steps=40", seen,
                   status == 1 and not (exp / "train_summary.json").exists(),
                   "exit 1 before any work, the checkpoints untouched")

    def corrupt_newest(self) -> Row:
        exp = self.work / "corrupt_newest"
        cli(self.train(exp, steps=9))  # step0000006.ckpt, step0000009.ckpt
        (exp / "train_summary.json").unlink()  # as if killed before the summary
        newest = exp / "checkpoints" / "step0000009.ckpt"
        newest.write_bytes(newest.read_bytes()[:4096])
        status, seen = cli(self.train(exp, steps=9))
        summary = json.loads((exp / "train_summary.json").read_text())
        return Row("newest checkpoint truncated to 4 KiB by something else (step0000009.ckpt, no summary yet), "
                   "then the same command", seen, status == 0 and summary["global_step"] == 9
                   and summary["steps_this_run"] == 3, "resumed from step0000006.ckpt, ended at step 9")

    def finished_rerun(self) -> Row:
        summary = self.dense / "train_summary.json"
        before = summary.read_bytes()
        status, seen = cli(["train", *self.train_args, "--exp", str(self.dense),
                            *sets(TINY_OVERRIDES + ["trainer.max_steps=6"])])
        return Row("the same training command after the run finished", seen,
                   status == 0 and summary.read_bytes() == before, "train_summary.json byte-identical")

    def full_disk(self) -> Row:
        case = "disk full during training (1 MiB tmpfs), then more space and the same command"
        disk = self.work / "disk"
        disk.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]
        if os.geteuid() != 0 or subprocess.run(mount).returncode:
            return Row(case, "(not run: mounting a tmpfs needs root)", None, "-")
        try:
            exp = disk / "exp"
            status, seen = cli(self.train(exp))
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            rerun, _ = cli(self.train(exp))
            lost_nothing = status == 1 and rerun == 0 and summary_step(exp) == 12 and all_checkpoints_load(exp)
        finally:
            subprocess.run(["umount", str(disk)])
        return Row(case, seen, lost_nothing, "exit 1 naming the file; after remounting larger the re-run ended at "
                   "step 12 and every *.ckpt loads")

    def pruning_stage_killed(self, rng: random.Random) -> Row:
        delay = rng.uniform(0.0, 3.0)

        def argv(exp: Path) -> list[str]:
            return ["prune", "run", "--method", "dap", "--criterion", "magnitude", "--sparsity", "0.6",
                    "--dense-checkpoint", str(self.model), "--data", str(self.work / "data"), "--langs", "de", "fr",
                    "--steps", "10", "--config", str(method), "--exp", str(exp),
                    *sets(TINY_OVERRIDES + ["data.single_language_batches=true"])]

        method = self.work / "interval2.yaml"
        method.write_text("interval: 2\n", encoding="utf-8")
        killed, whole = self.work / "prune_killed", self.work / "prune_whole"
        stage = "sparsity60/dap_middle_magnitude"
        when = wait_then_kill(popen(argv(killed), self.work / "prune.log"),
                              lambda: any((killed / stage / "checkpoints").glob("step*.ckpt")), delay)
        intact = all_checkpoints_load(killed)
        status, _ = cli(argv(killed))
        cli(argv(whole))

        def schedule(exp: Path) -> tuple:
            last = read_checkpoint(exp / stage / "checkpoints" / "last.ckpt")
            history = next(v["history"] for k, v in last["callbacks"].items() if k.startswith("AdaptiveMasking"))
            result = json.loads((exp / stage / "result.json").read_text())
            return last["global_step"], [(h["step"], h["sparsity"]) for h in history], result["masks"]["sparsity"]

        same = schedule(killed) == schedule(whole) and same_tensors(final_weights(killed / stage),
                                                                     final_weights(whole / stage))
        return Row(f"SIGKILL of a DAP pruning stage ({when}), then the same command",
                   f"re-run finished: step {schedule(killed)[0]}, mask re-evaluations at steps "
                   f"{[s for s, _ in schedule(killed)[1]]}", intact and status == 0 and same,
                   "final step, re-evaluation steps and sparsities, per-language sparsity, every mask and weight "
                   "equal to an uninterrupted run's")

    def autodfp_killed(self, rng: random.Random) -> Row:
        def argv(out: Path) -> list[str]:
            return ["autodfp", "--checkpoint", str(self.model), "--method", "agent", "--preserve", "0.6",
                    "--episodes", "60", "--utterances", "2", "--out", str(out)]

        out, uninterrupted = self.work / "autodfp" / "agent.ckpt", self.work / "autodfp_whole" / "agent.ckpt"
        state = Path(str(out) + ".search.pt")  # saved after every episode
        when = wait_then_kill(popen(argv(out), self.work / "autodfp.log"), state.exists, rng.uniform(0.0, 5.0))
        status, seen = cli(argv(out))
        again, third = cli(argv(out))
        cli(argv(uninterrupted))

        def result(path: Path) -> tuple:
            summary = json.loads(Path(str(path) + ".json").read_text())
            return summary["episode_rewards"], summary["layers"]

        same = result(out) == result(uninterrupted) and same_tensors(read_checkpoint(out)["state_dict"],
                                                                     read_checkpoint(uninterrupted)["state_dict"])
        return Row(f"SIGKILL of a 60-episode AutoDFP search ({when.replace('checkpoint', 'saved episode')}), then "
                   "the same command twice", f"{seen}; the third run: {third}",
                   status == 0 and again == 0 and same and not state.exists(),
                   "episode rewards, plan and pruned weights equal to an uninterrupted search's; the state file "
                   "removed; the third run did nothing")

    def rows(self, seed: int) -> list[Row]:
        rng = random.Random(seed)
        return [*self.config_rows(), *self.checkpoint_rows(), self.finished_rerun(), self.corrupt_newest(),
                self.kill_during_write(), self.kill_at_random(rng), self.other_max_steps(), self.full_disk(),
                self.pruning_stage_killed(rng),
                self.autodfp_killed(rng)]


def table(rows: list[Row], seconds: float, seed: int, record: dict) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lost = {True: "yes", False: "**NO**", None: "not run"}
    lines = [
        "# Faults and bad configs: what the user sees", "",
        f"`.venv/bin/python benchmarks/fault_table.py` (seed {seed}, {seconds / 60:.1f} min on this machine). "
        "Paths are shortened to the file name.", "", provenance_markdown(record), "",
        "| case | what the user sees | nothing lost | checked |", "|---|---|---|---|",
    ]
    lines += [f"| {cell(r.case)} | {cell(r.seen)} | {lost[r.nothing_lost]} | {cell(r.checked)} |" for r in rows]
    return "\n".join(lines) + "\n"


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fault_table.md"))
    parser.add_argument("--work", help="folder for the runs (default: a temporary folder, removed afterwards)")
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1000), help="kill moments")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the killed subprocesses (OMP_NUM_THREADS=1): exact comparisons need equal threads
    work = Path(args.work or tempfile.mkdtemp(prefix="fault_table_"))
    started = time.time()
    try:
        rows = Cases(work).rows(args.seed)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    text = table(rows, time.time() - started, args.seed, provenance(args.other_load)).replace(str(work) + "/", "")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text, end="")
    sys.exit(0 if all(r.nothing_lost is not False for r in rows) else 1)


if __name__ == "__main__":
    main_cli()
