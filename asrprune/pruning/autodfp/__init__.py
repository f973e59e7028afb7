"""AutoDFP-style data-free structured pruning of the conformer (no training data, no fine-tuning).

- :mod:`asrprune.model.conformer_layout` names the prunable units (subsampling channels, feed-forward units,
  attention heads, conv-module channels) and their dependent parameters; :mod:`.units`: per-layer MACs and
  parameters.
- :mod:`.similarity`: channel signatures, cosine similarity and L1 importance on the weights.
- :mod:`.reconstruction`: compensating pruned units, per unit kind: ``fold`` (into the most similar kept unit; the
  default), ``lstsq`` (closed-form least-squares refit of the next layer on synthetic inputs) or ``none``; where
  each is exact, approximate or hurts.
- :mod:`.prune`: applying a per-layer plan, building the smaller dense model.
- :mod:`.budget`: the preserved-ratio budget and the action wall.
- :mod:`.distortion`: data-free synthetic inputs and the output-KL reward (optional calibration data, not
  data-free).
- :mod:`.agent`: the Soft Actor-Critic search (stable-baselines3) and its random-search ablation;
  :mod:`.baselines`: uniform L1 and merging.
- :mod:`.latency`: the measured per-layer CPU latency table of the default budget.
- :mod:`.cli` (``asrprune autodfp``), :mod:`.table` (``asrprune autodfp-table``).
"""
