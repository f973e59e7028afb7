"""Every measured number in README.md's (and benchmarks/README.md's) prose traces to a committed result file that
the same text links to.

README.md is split into units: paragraphs, list items, table rows and headings. Fenced code, HTML comments and the
``<!-- table from PATH -->`` blocks (checked cell by cell by tests/project/test_readme_tables.py) are left out, and so
are inline code spans (commands, options, paths, commits) and link targets.

A *measured number* is a decimal (``9.2``), a percentage (``62 %``), a duration (``50 s``, ``4.6 min``, ``2.1 h``,
``34 min 29 s``, ``12-second``), a speed (``1.62x``, ``13.25 utterances/s``) or a size (``10.44 MB``, ``5.4 GiB``,
``2.6 M`` parameters); a range (``5-7 %``) is two numbers. Bare integers (step counts, utterance counts, seeds,
dimensions) are configuration and are not checked.

Each measured number must be found in a *source* of its unit: a file under ``benchmarks/results/`` that is committed
(tracked by git, or new and not ignored) and linked with a markdown link from the unit itself, from the paragraph
that leads into its table or list, or from a heading above it. Found means: some number in the file's text (or a
value DERIVED from the file below) rounds to the README's figure at the README's digits, after the unit conversions
that the README's unit allows (a fraction to %, seconds to min or h, MiB to GiB, bytes to MB, a count to M); a
compound duration is compared in seconds; a figure written "about N" may be 10 % off.

What is exempt is listed in ALLOWED, each entry with its reason, and every entry must still match README.md.
"""
from __future__ import annotations

import csv
import io
import json
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("benchmarks/results/",)
TEXT_SUFFIXES = {".md", ".json", ".jsonl", ".txt", ".csv", ".tsv", ".yaml"}

# Text that holds numbers which are settings, requirements or versions, not measurements: (regex, reason).
ALLOWED: list[tuple[str, str]] = [
    (r"\b(?:35|50|70|90) ?%", "sparsity targets of the pruning runs and the mini recipe's mask (configuration)"),
    (r"last 20 %\s+of\s+the\s+run", "the DAP schedule's mask-freeze fraction (configuration)"),
    (r"goal\s+of\s+15 %", "the overhead the masking issue allows (a requirement)"),
    (r"the 1\.5x\s+the\s+speed\s+issue\s+asks\s+for", "the speed-up the speed issue asks for (a requirement)"),
    (r"speed perturbation\s+0\.9/1\.0/1\.1", "speed perturbation factors (configuration)"),
    (r"CPython 3\.11", "a Python version"),
    (r"target\s+for\s+this\s+command,\s+16 minutes", "the mini recipe's time limit the speed issue sets (a requirement)"),
    (r"60 % for training, 10 % for dev, 30 % held\s+out", "the corpus's voice pool shares (configuration)"),
    (r"RT60 0\.15-0\.5 s,\s+talker-microphone distance 0\.3-1\.5 m", "the corpus's room ranges (configuration)"),
]


def _table(text: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in ``text`` as dicts keyed by the header."""
    lines = [line.strip().strip("|") for line in text.splitlines() if line.startswith("|")]
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter="|"))
    header = [cell.strip() for cell in rows[0]]
    return [dict(zip(header, (cell.strip() for cell in row))) for row in rows[2:]]


def _stage_seconds(text: str, prefixes: tuple[str, ...]) -> float:
    return sum(s["seconds"] for s in json.loads(text)["stages"] if s["stage"].startswith(prefixes))


def _unseen_share(text: str) -> list[float]:
    rows = _table(text)
    return [100 * float(r["unseen ref phones"]) / (float(r["seen ref phones"]) + float(r["unseen ref phones"]))
            for r in rows]


def _mean_multilingual_per(text: str) -> list[float]:
    rows = [r for r in _table(text) if r["setting"] == "multilingual" and r["metric"] == "PER (greedy)"]
    return [statistics.mean(float(r[layer]) for r in rows) for layer in ("flat", "joinap_linear", "joinap_nonlinear")]


def _overhead_round_range(text: str) -> list[float]:
    rounds = json.loads(text)["seconds_per_step_each_round"]["cpu"]
    ratios = [100 * (variant / dense - 1) for name, values in rounds.items() if name != "dense"
              for variant, dense in zip(values, rounds["dense"])]
    return [min(ratios), max(ratios)]


def _ab_speedup(text: str, round_: int | None = None) -> float:
    """Mean utterances/s of the current code over the base's, over every round or in one round."""
    rows = [r for r in map(json.loads, text.splitlines()) if round_ is None or r["round"] == round_]
    speed = {code: statistics.fmean(r["utterances_per_second"] for r in rows if r["code"] == code)
             for code in ("current", "base")}
    return speed["current"] / speed["base"]


# Sums of a recipe record's stage times that the README quotes (the imports; decoding and scoring).
RECIPE_STAGE_SUMS = [
    ("import stage: sum of the four languages", "s", lambda t: _stage_seconds(t, ("stage 2:",))),
    ("decoding and scoring: stages 5 and 6", "s", lambda t: _stage_seconds(t, ("stage 5:", "stage 6:"))),
]

# Values computed from a result file that the README quotes: {file: [(what, kind, function of the file's text)]};
# kind "s" for seconds, "" otherwise (see _kind).
DERIVED = {
    "benchmarks/results/mini_recipe.json": RECIPE_STAGE_SUMS,
    "benchmarks/results/mini_recipe_bytecode.json": RECIPE_STAGE_SUMS,
    "benchmarks/results/mini_recipe_timemasks.json": RECIPE_STAGE_SUMS,
    "benchmarks/results/mini_recipe_default2500.json": RECIPE_STAGE_SUMS,
    "benchmarks/results/train_speed_ab.jsonl": [("training speed-up, current / base", "", _ab_speedup)],
    "benchmarks/results/train_speed_ab_1000steps.jsonl": [
        ("training speed-up over both rounds", "", _ab_speedup),
        ("training speed-up in round 1", "", lambda t: _ab_speedup(t, 1)),
        ("training speed-up in round 2", "", lambda t: _ab_speedup(t, 2))],
    "benchmarks/results/zero_shot_unseen_phones_pl.md": [("% of test phones unseen", "", _unseen_share)],
    "benchmarks/results/zero_shot_unseen_phones_zh.md": [("% of test phones unseen", "", _unseen_share)],
    "benchmarks/results/crosslingual_synthetic.md": [
        ("mean PER of de/fr/es/it per layer", "", _mean_multilingual_per)],
    "benchmarks/results/masked_training_overhead.json": [
        ("lowest and highest per-round CPU overhead of any masked variant, %", "", _overhead_round_range)],
}

# --- finding the numbers in README.md ---------------------------------------------------------------------------

NUM = r"(?<![A-Za-z0-9_.])\d+(?:\.\d+)?"
UNIT = (r"%|x(?![A-Za-z0-9])|utt(?:erances)?/s|s(?![A-Za-z0-9])|-second|min(?:utes?)?(?![A-Za-z0-9])"
        r"|h(?:ours?)?(?![A-Za-z0-9])|MiB|GiB|MB|GB|M(?![A-Za-z0-9])")
TOKEN = re.compile(
    rf"(?P<cmin>{NUM}) min (?P<csec>\d+) s(?![A-Za-z0-9])"            # 34 min 29 s
    rf"|(?P<lo>{NUM}) ?[-–] ?(?P<hi>\d+(?:\.\d+)?) ?(?P<runit>{UNIT})"  # 5-7 %, 1.57-1.62x
    rf"|(?P<num>{NUM})(?P<sep> ?)(?P<unit>{UNIT})?")
APPROX = re.compile(r"(?:about|around|~) ?$")
FACTORS = {  # README unit -> factors a source number may be multiplied by to give the README's figure (durations:
    # converted between s, min and h by SECONDS)
    "%": (1, 100), "x": (1,), "utt/s": (1,), "": (1,),
    "MiB": (1,), "GiB": (1, 1 / 1024), "MB": (1, 1e-6), "GB": (1, 1e-9), "M": (1, 1e-6),
}


@dataclass
class Number:
    line: int
    text: str      # as written in the README
    value: float   # in ``unit``
    decimals: int
    unit: str
    approx: bool


@dataclass
class Unit:
    kind: str      # "para", "item", "row" or "heading"
    line: int      # 1-based line of its start in README.md
    text: str
    sources: list[str] = field(default_factory=list)   # linked files, relative to the repository
    numbers: list[Number] = field(default_factory=list)


def _unit_name(raw: str) -> str:
    if raw in ("-second", "s"):
        return "s"
    if raw.startswith("min"):
        return "min"
    if raw.startswith("h"):
        return "h"
    if raw.startswith("utt"):
        return "utt/s"
    return raw


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def visible_lines(readme: str) -> list[str]:
    """README lines with fenced code, generated table blocks and HTML comments blanked (line numbers kept)."""
    text = re.sub(r"<!-- table from \S+ -->\n.*?<!-- end table -->", _blank, readme, flags=re.DOTALL)
    text = re.sub(r"^```.*?^```", _blank, text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.DOTALL)
    return text.split("\n")


LINK = re.compile(r"\[(?P<label>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def link_targets(text: str) -> list[str]:
    return [m["target"].split("#")[0] for m in LINK.finditer(text)
            if not re.match(r"[a-z]+:", m["target"]) and not m["target"].startswith("#")]


def prose(text: str) -> str:
    """``text`` without inline code, link targets and version numbers: what may hold a measured number."""
    text = re.sub(r"`[^`]*`", lambda m: " " * len(m.group(0)), text)
    text = LINK.sub(lambda m: m["label"] + " " * (len(m.group(0)) - len(m["label"])), text)
    text = re.sub(r"\d+(?:\.\d+){2,}", lambda m: " " * len(m.group(0)), text)
    for pattern, _ in ALLOWED:
        text = re.sub(pattern, lambda m: " " * len(m.group(0)), text)
    return text


def numbers(text: str, line: int) -> list[Number]:
    """The measured numbers in one unit's text (already through ``prose``)."""
    found = []
    for m in TOKEN.finditer(text):
        approx = bool(APPROX.search(text[:m.start()]))
        if m["cmin"]:
            found.append(Number(line, m.group(0), int(float(m["cmin"])) * 60 + int(m["csec"]), 0, "s", approx))
            continue
        if m["lo"]:
            unit = _unit_name(m["runit"])
            for part in (m["lo"], m["hi"]):
                decimals = len(part.split(".")[1]) if "." in part else 0
                found.append(Number(line, m.group(0), float(part), decimals, unit, approx))
            continue
        part, unit = m["num"], _unit_name(m["unit"] or "")
        if m["sep"] and unit == "x":         # "4 x 144" is a shape, not a speed-up
            unit = ""
        if "." not in part and not unit:
            continue                          # bare integer: a count or a setting
        decimals = len(part.split(".")[1]) if "." in part else 0
        found.append(Number(line, m.group(0).strip(), float(part), decimals, unit, approx))
    return found


def units(readme: str) -> list[Unit]:
    """Paragraphs, list items, table rows and headings of ``readme`` with the files each may cite."""
    result: list[Unit] = []
    sections: list[tuple[int, list[str]]] = []   # (heading level, its links) of the enclosing headings
    lead: list[str] = []                          # links of the last paragraph: lead-in of the next list or table
    current: dict | None = None

    def close():
        nonlocal current, lead
        if current is None:
            return
        text = "\n".join(current["lines"])
        own = link_targets(text)
        inherited = lead if current["kind"] in ("item", "row") else []
        result.append(Unit(current["kind"], current["line"], text,
                           own + inherited + [t for _, links in sections for t in links]))
        if current["kind"] == "para":
            lead = own
        current = None

    for number, line in enumerate(visible_lines(readme), 1):
        heading = re.match(r"(#{1,6})\s", line)
        if not line.strip():
            close()
        elif heading:
            close()
            level = len(heading.group(1))
            sections = [s for s in sections if s[0] < level] + [(level, link_targets(line))]
            lead = []
            result.append(Unit("heading", number, line, [t for _, links in sections for t in links]))
        elif line.startswith("|"):
            close()
            current = {"kind": "row", "line": number, "lines": [line]}
            close()
        elif re.match(r"\s*(?:[-*+]|\d+\.)\s+", line):
            close()
            current = {"kind": "item", "line": number, "lines": [line]}
        elif current is None:
            current = {"kind": "para", "line": number, "lines": [line]}
        else:
            current["lines"].append(line)
    close()
    for unit in result:
        unit.numbers = numbers(prose(unit.text), unit.line)
    return result


# --- the sources ------------------------------------------------------------------------------------------------

def committed_files(root: Path) -> set[str] | None:
    """Files git tracks or would add (not ignored), relative to ``root``; None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(out.splitlines())


SECONDS = {"s": 1, "min": 60, "h": 3600}


def _kind(unit: str) -> str:
    """What a unit measures ("share", "speed", "size"; a duration keeps its unit): a number written with one unit
    in a result file cannot trace a README figure of another kind."""
    unit = _unit_name(unit)
    if unit in SECONDS:
        return unit
    return {"%": "share", "x": "speed", "utt/s": "speed"}.get(unit, "size" if unit else "")


def _time_unit(name: str) -> str:
    """The duration unit a JSON key or table header names ("wall_seconds", "search s", "train min", "train_hours"),
    or "" (also for rates: "utterances_per_second", "audio s/s")."""
    name = name.lower()
    if re.search(r"per[_ ](?:s|sec|seconds?|min|minutes?|h|hours?)\b|/s\b", name):
        return ""
    for unit, pattern in (("s", r"seconds?|(?:^|[_ ])s$"), ("min", r"minutes?|(?:^|[_ ])min$"),
                          ("h", r"hours?|(?:^|[_ ])h$")):
        if re.search(pattern, name):
            return unit
    return ""


def _text_values(text: str) -> list[tuple[float, str]]:
    """Numbers in free text, each with the kind of the unit written after it ("" if none); compound durations
    ("80 min 17 s") also as seconds."""
    values = [(float(m["num"]), "" if m["sep"] and m["unit"] == "x" else _kind(m["unit"] or ""))
              for m in re.finditer(rf"(?P<num>{NUM})(?P<sep> ?)(?P<unit>{UNIT})?", text)]
    return values + [(int(m) * 60 + int(s), "s") for m, s in re.findall(r"(\d+) min (\d+) s", text)]


def _json_values(data, time_unit: str = "") -> list[tuple[float, str]]:
    """Numbers in parsed JSON; a number under a key that names a duration ("wall_seconds", "train_hours") is one."""
    if isinstance(data, dict):
        return [v for k, item in data.items() for v in _json_values(item, _time_unit(k) or time_unit)]
    if isinstance(data, list):
        return [v for item in data for v in _json_values(item, time_unit)]
    if isinstance(data, bool) or data is None:
        return []
    if isinstance(data, (int, float)):
        return [(float(data), time_unit)]
    return _text_values(str(data))


def _markdown_values(text: str) -> list[tuple[float, str]]:
    """Numbers in markdown; a table cell under a header that names a duration ("search s", "train min") is one."""
    values, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            values += _text_values(line)
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            values += _text_values(line)
        elif not set("".join(cells)) <= set("-: "):
            for name, cell in zip(header, cells):
                values += [(v, _time_unit(name) or kind) for v, kind in _text_values(cell)]
    return values


def source_values(root: Path, path: str) -> list[tuple[float, str]]:
    """Every number in a result file, with its kind where the file gives one, and the file's DERIVED values."""
    text = (root / path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        values = _json_values(json.loads(text))
    elif path.endswith(".jsonl"):
        values = [v for line in text.splitlines() if line.strip() for v in _json_values(json.loads(line))]
    else:
        values = _markdown_values(text)
    for _, kind, compute in DERIVED.get(path, []):
        derived = compute(text)
        values += [(v, kind) for v in (derived if isinstance(derived, list) else [derived])]
    return values


def resolve(root: Path, readme_dir: Path, target: str, committed: set[str] | None) -> tuple[list[str], str | None]:
    """The committed result files a link names (a folder: its text files), or a reason it names none."""
    path = (readme_dir / target).resolve()
    try:
        rel = path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return [], None
    if not rel.startswith(SOURCE_DIRS) or rel + "/" in SOURCE_DIRS:
        return [], None         # code, docs or the whole results folder: not a source that names its measurements
    if path.is_dir():           # a run's folder: the files in it
        files = sorted(p.relative_to(root.resolve()).as_posix() for p in path.iterdir() if p.is_file())
    elif path.is_file():
        files = [rel]
    else:
        return [], f"link to {target}: no such file"
    files = [f for f in files if Path(f).suffix in TEXT_SUFFIXES]     # a plot holds no number to compare
    missing = [f for f in files if committed is not None and f not in committed]
    if missing:
        return [f for f in files if f not in missing], f"link to {target}: not committed ({', '.join(missing)})"
    return files, None


def matches(number: Number, values: list[tuple[float, str]]) -> bool:
    """Some source value rounds to the README's figure: a duration from a duration (in any of s, min, h), other
    figures from a number of their own kind or of none, through the conversions FACTORS allows."""
    tolerance = 0.5 * 10 ** -number.decimals + 1e-9
    if number.approx:
        tolerance = max(tolerance, 0.1 * number.value)
    kind = _kind(number.unit)
    if kind in SECONDS:
        candidates = [abs(v) * SECONDS[source] / SECONDS[kind] for v, source in values if source in SECONDS]
    else:
        candidates = [abs(v) * k for v, source in values if not kind or source in ("", kind)
                      for k in FACTORS[number.unit]]
    return any(abs(c - number.value) <= tolerance for c in candidates)


def untraced(readme: str, root: Path, readme_dir: Path | None = None, committed: set[str] | None = None,
             name: str = "README.md") -> list[str]:
    """One line per measured number of ``readme`` (called ``name`` in the lines) that none of its unit's sources
    holds, and per bad link."""
    readme_dir = readme_dir or root
    problems, cache = [], {}
    for unit in units(readme):
        files: list[str] = []
        for target in dict.fromkeys(unit.sources):
            found, problem = resolve(root, readme_dir, target, committed)
            files += found
            if problem and unit.kind != "heading":
                problems.append(f"{name}:{unit.line}: {problem}")
        values = [v for f in dict.fromkeys(files) for v in cache.setdefault(f, source_values(root, f))]
        for number in unit.numbers:
            if not matches(number, values):
                where = ", ".join(dict.fromkeys(files)) or "no linked result file"
                problems.append(f"{name}:{number.line}: {number.text!r} not in {where}")
    return list(dict.fromkeys(problems))


# --- the check on README.md -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["README.md", "benchmarks/README.md"])
def test_every_measured_number_in_the_readme_traces_to_a_linked_result_file(name):
    path = REPO / name
    problems = untraced(path.read_text(encoding="utf-8"), REPO, path.parent, committed_files(REPO), name)
    assert not problems, ("measured numbers without a committed source linked from the same paragraph (link the "
                          "result file that holds each, or remove the number):\n" + "\n".join(problems))


def test_the_check_sees_the_readme_numbers():
    """Not a rubber stamp: the README's prose has many measured numbers and most units cite a result file."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    parsed = units(readme)
    assert sum(len(u.numbers) for u in parsed) > 150
    assert sum(1 for u in parsed if u.numbers and u.sources) > 30


@pytest.mark.parametrize("pattern,reason", ALLOWED)
def test_every_allowed_pattern_is_still_used(pattern, reason):
    used = re.search(pattern, (REPO / "README.md").read_text(encoding="utf-8")) is not None
    assert used, f"no longer in README.md, remove it from ALLOWED: {pattern} ({reason})"


def test_every_derived_value_computes():
    for path, entries in DERIVED.items():
        text = (REPO / path).read_text(encoding="utf-8")
        for what, _, compute in entries:
            assert compute(text) is not None, (path, what)


# --- the checker on small READMEs -------------------------------------------------------------------------------

@pytest.fixture
def results(tmp_path):
    (tmp_path / "benchmarks/results").mkdir(parents=True)
    (tmp_path / "benchmarks/results/run.json").write_text(
        '{"per": 9.2097, "seconds": 2069, "utt_per_s": 19.64, "share": 0.608, "venv_mb": 5551}', encoding="utf-8")
    (tmp_path / "benchmarks/results/other.md").write_text("| a |\n|---|\n| 31.3 |\n", encoding="utf-8")
    return tmp_path


def check(root: Path, readme: str, committed: set[str] | None = None) -> list[str]:
    return untraced(readme, root, committed=committed)


LINK_RUN = "[record](benchmarks/results/run.json)"


def test_a_number_in_the_linked_file_passes(results):
    assert check(results, f"Dev PER 9.2097 and 19.64 utterances/s ({LINK_RUN}).\n") == []


def test_a_number_not_in_the_linked_file_fails_and_names_its_line(results):
    problems = check(results, f"# t\n\nfirst\n\nDev PER 9.3 % ({LINK_RUN}).\n")
    assert problems == ["README.md:5: '9.3 %' not in benchmarks/results/run.json"]


def test_rounding_to_the_readmes_digits(results):
    assert check(results, f"Dev PER 9.2 % and 9.21 % ({LINK_RUN}).\n") == []
    assert check(results, f"Dev PER 9.22 % ({LINK_RUN}).\n") != []


def test_unit_conversions(results):
    readme = (f"It took 34 min 29 s, or 34 min, or about 35 min; overlap 60.8 % (0.608); the venv is 5.4 GiB "
              f"({LINK_RUN}).\n")
    assert check(results, readme) == []
    assert check(results, f"It took 34 min 30 s ({LINK_RUN}).\n") != []
    assert check(results, f"It took 34.6 min ({LINK_RUN}).\n") != []


def test_a_number_written_with_another_unit_does_not_count(results):
    (results / "benchmarks/results/other.md").write_text("sparsity 70%, 12 s, 1.5x\n", encoding="utf-8")
    link = "[t](benchmarks/results/other.md)"
    assert check(results, f"It took 12 s at 70.0 % and 1.5x ({link}).\n") == []
    assert check(results, f"It took 70 min, 12 % at 1.5 GiB ({link}).\n") == [
        f"README.md:1: {t!r} not in benchmarks/results/other.md" for t in ("70 min", "12 %", "1.5 GiB")]


def test_a_duration_traces_only_to_a_duration_in_any_of_s_min_h(results):
    (results / "benchmarks/results/t.md").write_text("| PER | train min |\n|---|---|\n| 8.0 | 4.6 |\n",
                                                     encoding="utf-8")
    link = "[t](benchmarks/results/t.md)"
    assert check(results, f"Training took 4.6 min, that is 276 s or 0.08 h, PER 8.0 ({link}).\n") == []
    assert check(results, f"Training took 8 min ({link}).\n") == ["README.md:1: '8 min' not in benchmarks/results/t.md"]


def test_a_file_the_paragraph_does_not_link_does_not_count(results):
    assert check(results, f"French WER 31.3 ({LINK_RUN}).\n") == [
        "README.md:1: '31.3' not in benchmarks/results/run.json"]
    assert check(results, "French WER 31.3, from [the table](benchmarks/results/other.md).\n") == []
    assert check(results, "French WER 31.3.\n") == ["README.md:1: '31.3' not in no linked result file"]


def test_table_rows_and_list_items_inherit_the_lead_in_paragraph_and_headings(results):
    table = f"Per run ({LINK_RUN}):\n\n| a | b |\n|---|---|\n| 9.2 | 19.64 |\n"
    assert check(results, table) == []
    assert check(results, "Per run:\n\n| a |\n|---|\n| 9.2 |\n") != []
    assert check(results, f"Findings ({LINK_RUN}):\n- dev PER 9.2 %\n- 19.6 utt/s\n") == []
    assert check(results, "## Section ([record](benchmarks/results/run.json))\n\nDev PER 9.2 %.\n") == []
    assert check(results, f"## Section ({LINK_RUN})\n\ntext\n\n## Next\n\nDev PER 9.2 %.\n") != []


def test_code_generated_tables_comments_integers_and_allowed_settings_are_not_checked(results):
    readme = ("Run `asrprune train --lr 0.002` for 1000 steps with seed 7, pruning to 70 %.\n\n"
              "```bash\nsleep 3.5\n```\n\n"
              "<!-- table from benchmarks/results/other.md -->\n| a |\n|---|\n| 99.9 |\n<!-- end table -->\n\n"
              "<!-- seed variance 4.2 -->\ntorch 2.11.0, CPython 3.11.\n")
    assert check(results, readme) == []


def test_links_to_missing_or_uncommitted_results_are_reported(results):
    assert check(results, "Dev 9.2 % ([x](benchmarks/results/gone.md)).\n") == [
        "README.md:1: link to benchmarks/results/gone.md: no such file",
        "README.md:1: '9.2 %' not in no linked result file"]
    problems = check(results, f"Dev PER 9.2 % ({LINK_RUN}).\n", committed={"benchmarks/results/other.md"})
    assert problems[0] == ("README.md:1: link to benchmarks/results/run.json: not committed "
                           "(benchmarks/results/run.json)")


def test_a_run_folder_is_a_source_but_the_whole_results_folder_is_not(results):
    (results / "benchmarks/results/run1").mkdir()
    (results / "benchmarks/results/run1/README.md").write_text("took 80 min 17 s\n", encoding="utf-8")
    assert check(results, "It took 80 min ([run](benchmarks/results/run1/)).\n") == []
    assert check(results, "Dev PER 9.2 % ([all](benchmarks/results/)).\n") == [
        "README.md:1: '9.2 %' not in no linked result file"]


def test_ranges_check_both_ends(results):
    assert check(results, f"Between 9.2-19.6 % ({LINK_RUN}).\n") == []
    assert check(results, f"Between 9.2-19.9 % ({LINK_RUN}).\n") == [
        "README.md:1: '9.2-19.9 %' not in benchmarks/results/run.json"]
