"""Bad inputs a user may hand the importers, each run through the real command line, with what the user sees.

Each case builds its input in a temporary folder (tiny Common Voice and AISHELL-1 layouts from
``tests/helpers/corpus_fixtures.py``: 1 s synthetic clips written with soundfile), runs ``python -m asrprune.cli ...`` on
it and checks the outcome:

- a *stop* (bad file layout or encoding): exit status 1, exactly one line on stderr naming the file (and line),
  nothing on stdout and no output folder written;
- a *counted drop* (a bad utterance): exit status 0, and every input utterance is accounted for: the kept ones are
  in ``wav.scp``, every other one is in ``dropped.tsv`` with the expected reason, nothing else is in either;
- *kept*: as a counted drop, and the utterance's ``text`` is the expected normalised transcript.

Every case also checks that nothing but the importers' report lines reaches stdout (ESPnet's "Failed to import
Flash Attention" print used to). The table goes to ``--out``; temporary paths are shown as ``<tmp>``.

Example: python benchmarks/bad_inputs.py --out benchmarks/results/bad_inputs.md
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test fixtures write the corpus layouts (tests.helpers); one copy of that code

from tests.helpers.corpus_fixtures import AISHELL_TRANSCRIPT, write_aishell, write_cv_split  # noqa: E402

from asrprune.benchmarking.provenance import provenance, provenance_markdown  # noqa: E402
from asrprune.data.kaldi_dir import read_table  # noqa: E402

GOOD_ROW = ("a1", "good.mp3", "Guten Tag")  # every Common Voice case has this row, which must be kept
AISHELL_LINE_WITHOUT_FOLDER = "BAC009S0999W0001 没有 文件夹\n"


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: ``build(tmp)`` writes it under ``tmp`` and returns the command's arguments after
    ``asrprune``. ``stop`` is a text the one stderr line must hold; otherwise ``data_dir`` (relative to
    ``tmp/out``) must account for exactly the utterances of ``baseline`` (the fixture's own) and ``expected``
    (the case's), each uttid -> ``"kept"`` or its drop reason, and ``text`` maps kept utterances to their
    expected transcript."""

    name: str
    build: Callable[[Path], list[str]]
    stop: str = ""
    data_dir: str = ""
    baseline: dict[str, str] = dataclasses.field(default_factory=dict)
    expected: dict[str, str] = dataclasses.field(default_factory=dict)
    text: dict[str, str] = dataclasses.field(default_factory=dict)


def commonvoice(rows: list[tuple[str, ...]], clip_bytes: dict[str, bytes] | None = None, **tsv_options) -> Callable:
    """A ``build`` for a Common Voice ``dev.tsv`` holding :data:`GOOD_ROW` and ``rows``; ``clip_bytes``
    replaces clips' content (corrupt or empty files); ``tsv_options`` go to ``write_cv_split``."""

    def build(tmp: Path) -> list[str]:
        lang_dir = tmp / "cv" / "de"
        write_cv_split(lang_dir, "dev", [GOOD_ROW, *rows], **tsv_options)
        for clip, data in (clip_bytes or {}).items():
            (lang_dir / "clips" / clip).write_bytes(data)
        return ["prep-commonvoice", "--release", str(lang_dir), "--lang", "de", "--out", str(tmp / "out"),
                "--splits", "dev"]

    return build


def aishell(extra_transcript: bytes) -> Callable:
    """A ``build`` for the AISHELL-1 fixture with ``extra_transcript`` appended to its transcript file."""

    def build(tmp: Path) -> list[str]:
        root = write_aishell(tmp / "aishell", archived=False)
        transcript = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
        transcript.write_bytes(transcript.read_bytes() + extra_transcript)
        return ["prep-aishell", "--root", str(root), "--out", str(tmp / "out")]

    return build


def make_inventory(tmp: Path) -> list[str]:
    """A hand-edited lexicon whose second entry uses ``ɚ`` (an IPA symbol panphon has no features for)."""
    lexicon = tmp / "lexicon.txt"
    lexicon.write_text("hallo h a l oː\nvater f aː t ɚ\n", encoding="utf-8")
    return ["make-inventory", "--lexicons", str(lexicon), "--out", str(tmp / "out" / "phones.txt")]


GOOD = {"a1-good": "kept"}  # GOOD_ROW
AISHELL_TRAIN = {  # the fixture's own train split (tests/helpers/corpus_fixtures.py), which every AISHELL case imports
    "BAC009S0002W0122": "kept", "BAC009S0002W0123": "kept",
    "BAC009S0002W0124": "missing audio", "BAC009S0002W0125": "no transcript",
}
CASES = (
    Case("corrupt clip", commonvoice([("b2", "bad.mp3", "Hallo Welt")], {"bad.mp3": bytes(range(256)) * 8}),
         data_dir="dev_de", baseline=GOOD, expected={"b2-bad": "unreadable audio"}),
    Case("zero-byte clip", commonvoice([("b2", "bad.mp3", "Hallo Welt")], {"bad.mp3": b""}),
         data_dir="dev_de", baseline=GOOD, expected={"b2-bad": "unreadable audio"}),
    Case("empty transcript", commonvoice([("b2", "bad.mp3", "")]),
         data_dir="dev_de", baseline=GOOD, expected={"b2-bad": "empty text"}),
    Case("unknown IPA symbol in a lexicon", make_inventory, stop="lexicon.txt:2"),
    Case("TSV missing a column", commonvoice([("b2", "bad.mp3")], columns=("client_id", "path")),
         stop="dev.tsv: missing column 'sentence'"),
    Case("non-UTF-8 TSV (Latin-1)", commonvoice([("b2", "bad.mp3", "Grüße")], encoding="latin-1"),
         stop="dev.tsv:3: not UTF-8"),
    Case("UTF-8 BOM before the TSV header", commonvoice([("b2", "other.mp3", "Hallo Welt")], encoding="utf-8-sig"),
         data_dir="dev_de", baseline=GOOD, expected={"b2-other": "kept"}),
    Case("two TSV rows with the same clip", commonvoice([("b2", "good.mp3", "Hallo Welt")]),
         data_dir="dev_de", baseline=GOOD, expected={"b2-good": "duplicate clip"}),
    Case("non-UTF-8 AISHELL transcript (GBK line)", aishell("BAC009S0002W0126 限购\n".encode("gbk")),
         stop=f"aishell_transcript_v0.8.txt:{len(AISHELL_TRANSCRIPT) + 1}: not UTF-8"),
    Case("AISHELL transcript line whose speaker has no folder", aishell(AISHELL_LINE_WITHOUT_FOLDER.encode()),
         data_dir="train_zh", baseline=AISHELL_TRAIN, expected={"BAC009S0999W0001": "no speaker folder"}),
    Case("German 1.234,5 (decimal comma, thousands point)", commonvoice([("b2", "n.mp3", "Es kostet 1.234,5 Euro.")]),
         data_dir="dev_de", baseline=GOOD, expected={"b2-n": "kept"},
         text={"b2-n": "es kostet eintausendzweihundertvierunddreißig komma fünf euro"}),
    Case("German 3. Mai (ordinal point)", commonvoice([("b2", "n.mp3", "Am 3. Mai")]),
         data_dir="dev_de", baseline=GOOD, expected={"b2-n": "unreadable number"}),
)


@dataclasses.dataclass
class Outcome:
    """What one case gave: the command, the line the user sees, the outcome and the problems found (none = ok)."""

    command: str
    seen: str
    outcome: str
    problems: list[str]
    seconds: float


def run_case(case: Case, tmp: Path) -> Outcome:
    """Build ``case`` under ``tmp``, run the command, check it (see the module docstring)."""
    args = case.build(tmp)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "asrprune.cli", *args], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    seconds = time.perf_counter() - start
    command = "asrprune " + " ".join(args[:1] + [a.replace(str(tmp), "<tmp>") for a in args[1:]])
    check = check_stop if case.stop else check_data_dir
    seen, outcome, problems = check(case, result, tmp)
    if "Flash Attention" in result.stdout:
        problems.append("ESPnet's Flash Attention line on stdout")
    return Outcome(command, seen.replace(str(tmp), "<tmp>"), outcome, problems, seconds)


def check_stop(case: Case, result: subprocess.CompletedProcess, tmp: Path) -> tuple[str, str, list[str]]:
    """A stop: status 1, one stderr line holding ``case.stop``, empty stdout, no output written."""
    lines = result.stderr.splitlines()
    problems = [] if result.returncode == 1 else [f"exit status {result.returncode}"]
    if len(lines) != 1 or case.stop not in lines[0]:
        problems.append(f"stderr is not one line holding {case.stop!r}")
    if result.stdout:
        problems.append("stdout not empty")
    if (tmp / "out").exists():
        problems.append("output written before the error")
    return (lines[-1] if lines else ""), "stops, nothing written", problems


def check_data_dir(case: Case, result: subprocess.CompletedProcess, tmp: Path) -> tuple[str, str, list[str]]:
    """A counted drop or a kept utterance: status 0 and ``case.expected`` is exactly what was kept and dropped."""
    if result.returncode != 0:
        return result.stderr.strip()[-300:], "failed", [f"exit status {result.returncode}"]
    data_dir = tmp / "out" / case.data_dir
    kept = set(read_table(data_dir / "wav.scp"))
    dropped = {fields[0]: fields[1:] for fields in
               (line.split("\t") for line in (data_dir / "dropped.tsv").read_text(encoding="utf-8").splitlines()[1:])}
    found = {**{uttid: reason for uttid, (reason, _) in dropped.items()}, **{uttid: "kept" for uttid in kept}}
    expected = {**case.baseline, **case.expected}
    problems = [] if found == expected else [f"kept/dropped {found} != expected {expected}"]
    texts = read_table(data_dir / "text")
    problems += [f"text of {u}: {texts.get(u)!r} != {t!r}" for u, t in case.text.items() if texts.get(u) != t]
    report_line = next((line for line in result.stdout.splitlines() if line.startswith(f"{case.data_dir}:")), "")
    bad = [u for u, outcome in case.expected.items() if outcome != "kept"]
    seen = "; ".join([report_line, *(f"dropped.tsv: {u}, {': '.join(dropped.get(u, ['?']))}" for u in bad)])
    seen += "".join(f"; text: {texts.get(u, '')}" for u in case.text)
    outcome = "counted drop, nothing lost" if bad else "kept, nothing lost"
    return seen, outcome, problems


def markdown(outcomes: list[tuple[Case, Outcome]], record: dict) -> str:
    """The results table, one row per case, after the provenance ``record``."""
    lines = [
        "# Bad inputs: what the user sees",
        "",
        "Written by `python benchmarks/bad_inputs.py --out benchmarks/results/bad_inputs.md`; each case runs the "
        "real command on an input built in a temporary folder (`<tmp>`). *checked*: the exit status, the one "
        "stderr line for stops, no output written before a stop, every input utterance kept or in `dropped.tsv` "
        "with the expected reason, the expected text, and no ESPnet line on stdout.",
        "",
        provenance_markdown(record),
        "",
        "| case | command | what the user sees | outcome | checked | s |",
        "|---|---|---|---|---|---|",
    ]
    for case, out in outcomes:
        checked = "ok" if not out.problems else "FAILED: " + "; ".join(out.problems)
        cells = [case.name, f"`{out.command}`", out.seen, out.outcome, checked, f"{out.seconds:.0f}"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bad_inputs.md")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    args = parser.parse_args()
    outcomes = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run_case(case, Path(tmp))
        print(f"{case.name}: {'ok' if not outcome.problems else outcome.problems} ({outcome.seconds:.0f} s)")
        outcomes.append((case, outcome))
    args.out.write_text(markdown(outcomes, provenance(args.other_load)), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(not out.problems for _, out in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
