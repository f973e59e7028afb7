"""The synthetic corpus (espeak-ng speech in the CommonVoice and AISHELL-1 layouts), so every recipe runs without
downloading a corpus: sentences, voices, noise, the two layouts, and the generator (``asrprune synth``)."""
