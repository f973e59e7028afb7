"""Importers of real corpora (CommonVoice, AISHELL-1, Hugging Face datasets) into Kaldi data directories with
IPA phone transcripts; pure functions with their CLI stage beside them (``asrprune prep-*``)."""
