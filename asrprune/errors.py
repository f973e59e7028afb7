"""The base class of bad-input errors that are not already an ``OSError``, ``ValueError`` or ``KeyError``.

An :class:`InputError`'s message names the file, line, field or setting and what to do, so ``asrprune`` prints it as
one line without a traceback. This module imports nothing, so the command line can catch these errors without
importing the stages (and torch) that raise them.
"""


class InputError(RuntimeError):
    """Bad input (an unreadable clip, a corpus that cannot be generated as asked, a failing espeak-ng); the message
    says which and why."""
