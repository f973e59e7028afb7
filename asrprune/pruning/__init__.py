"""Pruning methods, the top floor of asrprune: they drive training through Lightning callbacks or act on a trained
model, and nothing below them (phonology, data, model, training) imports them.

- :mod:`asrprune.pruning.masking`: unstructured masks, shared or one per language (ASR pathways): magnitude
  baselines (OMP, IMP, LTH, LAP, LSP, static pathways), adaptive masking and Dynamic ASR Pathways.
- :mod:`asrprune.pruning.autodfp`: data-free structured pruning with similarity-based reconstruction and a
  Soft Actor-Critic agent (AutoDFP).
"""
