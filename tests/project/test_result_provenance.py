"""Every result file README.md or benchmarks/README.md links to (or builds a table from) carries a provenance
record that names the commit of this repository whose code made it.

A file's record is, in this order: the file itself; its twin ``<stem>.json`` beside it (a markdown table written
with its JSON record); the README.md or provenance.json of the run folder it sits in (a folder under
``benchmarks/results/``); or, for a copy of part of another result, that result (COPIES, where the copy must still
be found verbatim in the record it names). A record names a commit when some 7-40 digit hexadecimal word in it is
a commit of this repository (a checkpoint hash is not one), so a result cannot cite code that does not exist, and
when it does not say that the commit was not recorded (an old result's note naming the commit that merely added the
file is no provenance).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from asrprune.benchmarking.provenance import git_commit, provenance_markdown
from tests.project.test_readme_numbers import REPO, TEXT_SUFFIXES, link_targets

RESULTS = "benchmarks/results"
READMES = ("README.md", "benchmarks/README.md")
# Copies of a part of another result file (README table blocks): {copy: (record, JSON field the copy comes from)}.
COPIES = {
    f"{RESULTS}/mini_recipe_RESULTS.md": (f"{RESULTS}/mini_recipe.json", "results"),
    f"{RESULTS}/mini_recipe_pruned.md": (f"{RESULTS}/mini_recipe.json", "pruned_results"),
    f"{RESULTS}/mini_recipe_transfer.md": (f"{RESULTS}/mini_recipe.json", "transfer_results"),
    f"{RESULTS}/mini_recipe_timemasks_RESULTS.md": (f"{RESULTS}/mini_recipe_timemasks.json", "results"),
    f"{RESULTS}/mini_recipe_timemasks_pruned.md": (f"{RESULTS}/mini_recipe_timemasks.json", "pruned_results"),
    f"{RESULTS}/mini_recipe_timemasks_transfer.md": (f"{RESULTS}/mini_recipe_timemasks.json", "transfer_results"),
    f"{RESULTS}/mini_recipe_default2500_RESULTS.md": (f"{RESULTS}/mini_recipe_default2500.json", "results"),
    f"{RESULTS}/mini_recipe_default2500_pruned.md": (f"{RESULTS}/mini_recipe_default2500.json", "pruned_results"),
    f"{RESULTS}/mini_recipe_default2500_transfer.md": (f"{RESULTS}/mini_recipe_default2500.json", "transfer_results"),
    f"{RESULTS}/crosslingual_synthetic.md": (f"{RESULTS}/crosslingual_recipe.json", "results"),
}
HEX_WORD = re.compile(r"(?<![0-9a-zA-Z])[0-9a-f]{7,40}(?![0-9a-zA-Z])")
NOT_RECORDED = re.compile(r"commit not recorded|the commit it ran at[^.]{0,80}not recorded"
                          r"|not recorded \(this (?:version of the )?file came", re.IGNORECASE)


def quoted_results() -> list[str]:
    """Text files under benchmarks/results/ that the READMEs link to or build a table from (a folder: its files)."""
    found: set[str] = set()
    for name in READMES:
        readme = REPO / name
        text = readme.read_text(encoding="utf-8")
        targets = link_targets(text) + re.findall(r"<!-- table from (\S+) -->", text)
        for target in targets:
            base = REPO if target.startswith(RESULTS) else readme.parent
            path = (base / target.split("#")[0]).resolve()
            if not path.is_relative_to(REPO / RESULTS) or path == (REPO / RESULTS).resolve():
                continue
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            found.update(p.relative_to(REPO).as_posix() for p in files if p.suffix in TEXT_SUFFIXES)
    return sorted(found)


def record_candidates(rel: str) -> list[str]:
    """Where a result file's provenance may be written, in the order the module docstring gives."""
    path = Path(rel)
    if rel in COPIES:
        return [COPIES[rel][0]]
    candidates = [rel, path.with_suffix(".json").as_posix()]
    for folder in path.parents:
        if folder == Path(RESULTS) or RESULTS not in folder.as_posix():
            break
        candidates += [(folder / "README.md").as_posix(), (folder / "provenance.json").as_posix()]
    return [c for c in dict.fromkeys(candidates) if (REPO / c).is_file()]


def commits_of_this_repository(words: set[str]) -> set[str]:
    """The words that name a commit here (``git cat-file --batch-check`` answers one line per word)."""
    words = sorted(words)
    out = subprocess.run(["git", "-C", str(REPO), "cat-file", "--batch-check"], input="\n".join(words) + "\n",
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return {word for word, line in zip(words, out) if line.split()[1:2] == ["commit"]}


@pytest.fixture(scope="module")
def history() -> None:
    try:
        shallow = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: commits cannot be checked")
    if shallow == "true":
        pytest.skip("a shallow clone lacks the commits results name")


def test_every_quoted_result_names_the_commit_that_made_it(history):
    files = quoted_results()
    assert len(files) > 20, files       # the READMEs quote dozens; far fewer means the links were not found
    texts = {rel: [(REPO / c).read_text(encoding="utf-8", errors="replace") for c in record_candidates(rel)]
             for rel in files}
    words = {rel: {w for text in texts[rel] if not NOT_RECORDED.search(text) for w in HEX_WORD.findall(text)}
             for rel in files}
    commits = commits_of_this_repository(set().union(*words.values()))
    missing = [f"{rel} (looked in {', '.join(record_candidates(rel)) or 'nothing'})"
               for rel in files if not words[rel] & commits]
    assert not missing, "results without a commit in their provenance record:\n" + "\n".join(missing)


@pytest.mark.parametrize("copy", sorted(COPIES))
def test_a_copy_is_still_what_its_record_holds(copy):
    record, field = COPIES[copy]
    assert (REPO / copy).read_text(encoding="utf-8") in json.loads((REPO / record).read_text())[field]


def test_a_hex_word_that_is_no_commit_names_none(history):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert commits_of_this_repository({head[:10], "f850c6b60f3748a8", "0000000"}) == {head[:10]}


def test_a_rewritten_result_file_does_not_make_the_tree_dirty(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "table.md").write_text("| a |\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "benchmarks" / "results" / "table.md").write_text("| b |\n")
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path)["dirty"] is True


def test_a_note_that_the_commit_was_not_recorded_is_no_record():
    assert NOT_RECORDED.search("the commit it ran at was not recorded (the file was last committed with 1a0f53b)")
    assert NOT_RECORDED.search("commit not recorded (this version of the file came with commit e282bc9)")
    record = {"commit": "0" * 40, "command": "x", "date": "d", "machine": "m", "torch": "t",
              "other_load": "not recorded by the command (it cannot see other jobs)"}
    assert not NOT_RECORDED.search(provenance_markdown(record))
