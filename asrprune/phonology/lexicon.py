"""A pronunciation lexicon (word -> phone tokens) stored as a Kaldi ``lexicon.txt``.

File format: one word per line, ``<word> <phone1> <phone2> ...``, single spaces, sorted by word (code point
order), UTF-8, phones as NFD panphon tokens (see :mod:`asrprune.phonology.segments`). One pronunciation per
word. The lexicon doubles as the G2P cache: :meth:`Lexicon.add_words` only converts words it does not hold,
so re-running an importer over the same text costs no espeak calls.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from asrprune.text_files import read_utf8_lines
from asrprune.phonology.g2p import words_to_phones
from asrprune.phonology.segments import phone_token_problem


class LexiconError(ValueError):
    """A lexicon file is malformed; the message names the file and line."""


class Lexicon(Mapping[str, tuple[str, ...]]):
    """Mapping from word to its phone tokens (a non-empty tuple of str)."""

    def __init__(self, entries: Mapping[str, Sequence[str]] | None = None):
        self._entries: dict[str, tuple[str, ...]] = {}
        for word, phones in (entries or {}).items():
            self._set(word, tuple(phones))

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read a Kaldi ``lexicon.txt``; raise :class:`LexiconError` naming ``file:line`` on a bad line
        (not UTF-8, no phones, a word listed twice, or a phone that is not an NFD panphon segment)."""
        path = Path(path)
        lexicon = cls()
        for lineno, line in enumerate(read_utf8_lines(path, LexiconError), 1):
            fields = line.split()
            if not fields:
                continue
            if fields[0] in lexicon:
                raise LexiconError(f"{path}:{lineno}: word {fields[0]!r} listed twice")
            problem = _entry_problem(fields[0], tuple(fields[1:]))
            if problem:
                raise LexiconError(f"{path}:{lineno}: {problem}")
            lexicon._entries[fields[0]] = tuple(fields[1:])
        return lexicon

    @classmethod
    def load_or_empty(cls, path: str | Path) -> Lexicon:
        """:meth:`load` the file if it exists, else return an empty lexicon."""
        return cls.load(path) if Path(path).is_file() else cls()

    def save(self, path: str | Path) -> None:
        """Write the lexicon sorted by word, via a temporary file so an interrupted save keeps the old file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for word in sorted(self._entries):
                f.write(f"{word} {' '.join(self._entries[word])}\n")
        tmp.replace(path)

    def __getitem__(self, word: str) -> tuple[str, ...]:
        return self._entries[word]

    def __contains__(self, word: object) -> bool:
        return word in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words)"

    def words(self) -> list[str]:
        """All words, sorted."""
        return sorted(self._entries)

    def phones(self) -> set[str]:
        """Every phone token used by some pronunciation."""
        return {phone for phones in self._entries.values() for phone in phones}

    def add_words(self, words: Iterable[str], lang: str) -> dict[str, str]:
        """Pronounce (G2P in ``lang``) and add the words not yet in the lexicon; return failures word -> reason.

        Words already present are neither converted again nor changed.
        """
        new_words = [word for word in dict.fromkeys(words) if word not in self._entries]
        if not new_words:
            return {}
        result = words_to_phones(new_words, lang)
        for word, phones in result.lexicon.items():
            self._set(word, phones)
        return result.failures

    def transcribe(self, words: Sequence[str]) -> tuple[str, ...]:
        """Concatenated phones of ``words``; raise ``KeyError`` naming the first word not in the lexicon."""
        phones: list[str] = []
        for word in words:
            try:
                phones.extend(self._entries[word])
            except KeyError:
                raise KeyError(f"word {word!r} is not in the lexicon") from None
        return tuple(phones)

    def _set(self, word: str, phones: tuple[str, ...]) -> None:
        problem = _entry_problem(word, phones)
        if problem:
            raise LexiconError(problem)
        self._entries[word] = phones


def _entry_problem(word: str, phones: tuple[str, ...]) -> str | None:
    """Why ``word -> phones`` cannot be a lexicon entry, or None if it can."""
    if word.split() != [word]:
        return f"word {word!r} is empty or contains whitespace"
    if not phones:
        return f"word {word!r} has no phones"
    for phone in phones:
        problem = phone_token_problem(phone)
        if problem:
            return f"word {word!r}: {problem}"
    return None
