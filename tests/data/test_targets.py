"""Target units (asrprune.data.targets): phones encoded through the inventory, subword pieces back to text."""
from __future__ import annotations

import pytest

from asrprune.data.kaldi_dir import Utterance
from asrprune.data.targets import PHONE, load_target_units
from asrprune.phonology.inventory import PhoneInventory
from asrprune.phonology.subwords import pieces_to_text


def test_target_units_for_phones(tmp_path):
    PhoneInventory.from_phones(["a", "b"]).save(tmp_path / "phones.txt")
    units = load_target_units(tmp_path / "phones.txt")
    assert units.kind == PHONE
    utt = Utterance("u1", "x.wav", "ab", "s", "de", 1.0, ("b", "a"))
    assert units.encode(utt) == [units.tokens.index("b"), units.tokens.index("a")]
    with pytest.raises(KeyError, match="u1.*ʃ"):
        units.encode(Utterance("u1", "x.wav", "x", "s", "de", 1.0, ("ʃ",)))
    assert pieces_to_text(["▁gu", "ten", "▁tag"]) == "guten tag"
