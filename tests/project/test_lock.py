"""requirements/lock.txt pins exactly what setup.cfg asks for, and the installed environment is the locked one."""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from asrprune import environment

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"


def locked_versions(path: Path = LOCK) -> dict[str, str]:
    """Package name (canonical) -> exact version, from a `uv pip compile --generate-hashes` lock."""
    text = path.read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", text, flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def setup_cfg_requirements() -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines() + config["options.extras_require"]["test"].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def test_every_setup_cfg_requirement_is_satisfied_by_the_lock():
    locked = locked_versions()
    for requirement in setup_cfg_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"setup.cfg asks for {requirement}, the lock has no {name}: run requirements/refresh.sh"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"setup.cfg asks for {requirement}, the lock pins {name}=={locked[name]}: run requirements/refresh.sh"
        )


def test_every_lock_entry_is_exact_and_hashed():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8").strip())
    assert len(blocks) > 100  # the whole transitive environment, not only the direct requirements
    for block in blocks:
        first = block.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9._-]+==\S+", first), f"not an exact pin: {first}"
        assert "--hash=sha256:" in block, f"no hash for {first}"


def test_torch_pair_is_pinned_in_setup_cfg_lock_and_environment_check():
    pins = {canonicalize_name(r.name): str(r.specifier) for r in setup_cfg_requirements()}
    locked = locked_versions()
    assert pins["torch"] == f"=={environment.TESTED_TORCH}" == f"=={locked['torch']}"
    assert pins["torchaudio"] == f"=={environment.TESTED_TORCHAUDIO}" == f"=={locked['torchaudio']}"


def skip_unless_bootstrap_environment() -> None:
    if not (REPO / ".venv" / ".asrprune-installed").exists() or Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip("not running in the bootstrap.sh environment")


def test_installed_environment_is_the_lock():
    """A venv made by bootstrap.sh holds the locked versions (a stale venv fails here, not somewhere obscure)."""
    skip_unless_bootstrap_environment()
    stale = {}
    for name, version in locked_versions().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            stale[name] = (version, installed)
    assert not stale, f"installed versions differ from the lock (locked, installed): {stale}; run ./bootstrap.sh"


def test_installed_packages_carry_their_bytecode():
    """bootstrap.sh compiles the packages' bytecode at install: without it, and with PYTHONDONTWRITEBYTECODE set,
    every process would compile torch, scipy and Lightning from source (seconds of each command's start-up)."""
    skip_unless_bootstrap_environment()
    import importlib.util

    import lightning
    import scipy.signal
    import torch

    for module in (torch, scipy.signal, lightning):
        cached = Path(importlib.util.cache_from_source(module.__file__))
        assert cached.is_file(), f"{module.__name__}: no {cached}; run ./bootstrap.sh (it compiles at install)"


def test_mismatched_torch_pair_gives_one_line(tmp_path):
    """With a torchaudio that cannot load, a stage that imports it prints one line naming both versions."""
    broken = tmp_path / "torchaudio"
    broken.mkdir()
    (broken / "__init__.py").write_text(
        "raise OSError('libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "asrprune.cli", "decode", "--help"],
        capture_output=True, text=True, env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "undefined symbol" in lines[0]
    assert f"torch {metadata.version('torch')}" in lines[0]
    assert f"torch=={environment.TESTED_TORCH} torchaudio=={environment.TESTED_TORCHAUDIO}" in lines[0]
