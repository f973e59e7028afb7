"""Unstructured weight masks, shared or one per language (ASR pathways), and the methods that find them.

- :mod:`.schedule`: gradual (cubic) sparsity schedule.
- :mod:`.criteria`: how a mask is re-scored: magnitude, per-language saliency, learned per-language scores (STE).
- :mod:`.callbacks`: the Lightning callback that re-evaluates masks every ΔT steps during training.
- :mod:`.masked_models`: turn a checkpoint into a masked one, read its masks and weights.
- :mod:`.methods`: OMP, LTH, LSP (= per-language IMP), adaptive monolingual masking, LAP, static pathways and
  Dynamic ASR Pathways, each as a sequence of training stages with its steps and wall time accounted.
- :mod:`.export`: compact export (kept values + bit-packed masks) of a pathway or of the multilingual model.
- :mod:`.report`: the results table, WER-vs-sparsity plot and mask-overlap heat map.
- :mod:`.runner`: method settings, one method run and evaluated at one sparsity, growing a new language's pathway.
- :mod:`.cli`: ``asrprune prune run|export|report|grow|unseen-table``.

The mask primitives themselves are in :mod:`asrprune.model`: ``mask_parametrization``, ``mask_registry``,
``mask_scores``, ``masked_optimizer`` (the update rule) and ``mask_storage`` (storage names, compact format).
"""
