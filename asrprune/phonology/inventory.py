"""The shared phone inventory: the CTC output vocabulary of the multilingual model.

Token order is the model's output order: ``<blank>`` (CTC blank) at index 0, ``<unk>`` at 1, then the phones
sorted by code point. The file format is ESPnet's ``token_list``: one token per line in index order.
Phones are NFD panphon segments (see :mod:`asrprune.phonology.segments`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence


from asrprune.phonology.lexicon import Lexicon
from asrprune.phonology.segments import phone_token_problem

BLANK = "<blank>"
UNK = "<unk>"
SPECIALS = (BLANK, UNK)


class InventoryError(ValueError):
    """A token list is malformed; the message names the file and line where there is one."""


class PhoneInventory:
    """Ordered token list ``tokens`` (``<blank>``, ``<unk>``, phones...) with index lookups."""

    def __init__(self, tokens: Sequence[str], *, source: str = "token list"):
        """Build from a complete token list (specials first); use :meth:`from_phones` to start from phones.

        ``source`` names where the tokens came from in error messages; a token's position is given as
        ``source:line`` with line = index + 1, matching the token-list file.
        """
        self.tokens: list[str] = list(tokens)
        self._index: dict[str, int] = {}
        for index, token in enumerate(self.tokens):
            where = f"{source}:{index + 1}"
            if not token or any(ch.isspace() for ch in token):
                raise InventoryError(f"{where}: expected one token without spaces, got {token!r}")
            expected_special = SPECIALS[index] if index < len(SPECIALS) else None
            if token != expected_special and (expected_special is not None or token in SPECIALS):
                expected = repr(expected_special) if expected_special else "a phone"
                raise InventoryError(f"{where}: expected {expected}, got {token!r}")
            if token in self._index:
                raise InventoryError(f"{where}: token {token!r} repeats line {self._index[token] + 1}")
            problem = phone_token_problem(token) if expected_special is None else None
            if problem:
                raise InventoryError(f"{where}: {problem}")
            self._index[token] = index
        if len(self.tokens) < len(SPECIALS):
            raise InventoryError(f"{source}: {len(self.tokens)} tokens; need at least {BLANK!r} and {UNK!r}")

    @classmethod
    def from_phones(cls, phones: Iterable[str]) -> PhoneInventory:
        """Inventory of the distinct ``phones`` (sorted by code point) after ``<blank>`` and ``<unk>``."""
        distinct = set(phones)
        specials = distinct & set(SPECIALS)
        if specials:
            raise InventoryError(f"phones must not include the special tokens {sorted(specials)}")
        return cls([*SPECIALS, *sorted(distinct)])

    @classmethod
    def from_lexicons(cls, lexicons: Iterable[Lexicon]) -> PhoneInventory:
        """Inventory of every phone used in any of ``lexicons`` (e.g. one per language)."""
        return cls.from_phones(phone for lexicon in lexicons for phone in lexicon.phones())

    def save(self, path: str | Path) -> None:
        """Write one token per line in index order, via a temporary file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(f"{token}\n" for token in self.tokens), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> PhoneInventory:
        """Read a token list written by :meth:`save`; raise :class:`InventoryError` naming ``file:line``."""
        with open(path, encoding="utf-8") as f:
            return cls([line.rstrip("\n") for line in f], source=str(path))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhoneInventory) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"PhoneInventory({len(self.phones)} phones)"

    @property
    def phones(self) -> list[str]:
        """The phone tokens, without ``<blank>`` and ``<unk>``, in index order."""
        return self.tokens[len(SPECIALS):]

    def index(self, token: str) -> int:
        """Index of ``token``; raise ``KeyError`` naming it if it is not in the inventory."""
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"phone {token!r} is not in the inventory ({len(self.phones)} phones)") from None

    def encode(self, phones: Iterable[str]) -> list[int]:
        """Indices of ``phones``; raise ``KeyError`` naming the first unknown phone."""
        return [self.index(phone) for phone in phones]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens at indices ``ids`` (ints or 0-d tensors); raise ``IndexError`` for an index out of range."""
        tokens = []
        for token_id in ids:
            index = int(token_id)
            if not 0 <= index < len(self.tokens):
                raise IndexError(f"token id {index} out of range 0..{len(self.tokens) - 1}")
            tokens.append(self.tokens[index])
        return tokens
