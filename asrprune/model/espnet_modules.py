"""The ESPnet modules asrprune builds on, imported with ESPnet's import-time print kept off stdout.

``espnet.nets.pytorch_backend.transformer.attention`` tries to import ``flash_attn`` when it is first imported and,
without it (always on CPUs), *prints* "Failed to import Flash Attention, using ESPnet default: ..." to stdout. That
line appeared on every ``asrprune`` command and would mix into any output a user pipes. It is not an error: ESPnet
then uses its own attention. Every ESPnet import in asrprune goes through this module, so the first import (the
only one that prints) happens here, inside ``redirect_stdout``; what was printed goes to the debug log instead.
"""
from __future__ import annotations

import contextlib
import io
import logging

with contextlib.redirect_stdout(io.StringIO()) as _espnet_import_output:
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    from espnet2.asr.specaug.specaug import SpecAug

if _espnet_import_output.getvalue().strip():
    logging.getLogger(__name__).debug("ESPnet import printed: %s", _espnet_import_output.getvalue().strip())

__all__ = ["ConformerEncoder", "SpecAug"]
