"""Reading UTF-8 text files so that an encoding error names the file, the line and the byte."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator


def read_utf8_lines(path: str | Path, error: type[Exception]) -> Iterator[str]:
    """The lines of the UTF-8 text file ``path`` (line ends kept), without a byte-order mark at its start; raise
    ``error`` naming the file, line and byte at the first line that is not UTF-8.

    Decoded line by line, not by ``open(encoding=...)``, because Python's decoder reads ahead in blocks and its
    error cannot say on which line the bad byte is.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise error(
                    f"{path}:{lineno}: not UTF-8 (byte {raw[err.start:err.end]!r} at column {err.start + 1}); "
                    "convert the file to UTF-8"
                ) from None
