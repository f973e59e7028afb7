"""Check that the installed torch and torchaudio load together (asrprune.cli runs the check when importing a stage
fails, and after a stage's module has imported torchaudio, before the stage runs).

torchaudio's compiled library is built against one torch release; another torch (or a torchaudio point release built
against a newer torch, as torchaudio 2.11.1 is) fails inside torchaudio with an ``undefined symbol`` or a missing
shared library. A user who installs asrprune into their own environment with plain pip can end up there; this turns
that traceback into one line naming both versions and the pair this project is tested with.
"""
from __future__ import annotations

from importlib import metadata

# The pair setup.cfg pins and requirements/lock.txt holds (tests/project/test_lock.py checks all three agree).
TESTED_TORCH = "2.11.0"
TESTED_TORCHAUDIO = "2.11.0"


class EnvironmentMismatch(RuntimeError):
    """torch and torchaudio are missing or do not load together."""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def check_torch_pair() -> None:
    """Import torchaudio (which loads its compiled library against torch); raise one-line EnvironmentMismatch if not."""
    try:
        import torchaudio  # noqa: F401  (imported for its side effect: loading libtorchaudio against torch)
        import torchaudio.compliance.kaldi  # noqa: F401
    except (ImportError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EnvironmentMismatch(
            f"torch {_version('torch')} and torchaudio {_version('torchaudio')} do not load together ({reason}); "
            f"install the tested pair: pip install torch=={TESTED_TORCH} torchaudio=={TESTED_TORCHAUDIO} "
            "(or run ./bootstrap.sh, which installs the whole locked environment)"
        ) from error
