"""asrprune: train, prune and score multilingual phone-CTC conformers."""
