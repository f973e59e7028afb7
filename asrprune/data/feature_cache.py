"""An on-disk cache of filterbanks per utterance and speed factor (the role of ESPnet's ``dump/`` folder).

Feature extraction with speed perturbation takes CPU from the training step on a 2-core machine (the loader worker
used about a third of a core in the mini recipe), and every epoch and every later run (fine-tuning, each pruning
method) would repeat it. The cache keeps one ``.npy`` file per (utterance, speed factor) under
``<root>/fbank<bins>/sp<factor>/<lang>/<uttid>.npy``, stored as float16 (log-mel values lie within about +-30, where
float16 keeps 3 significant digits, finer than the features' noise; it halves the disk and read cost). A file older
than its audio is recomputed, and files are written atomically so concurrent loader workers or an interrupted run
never leave a partial file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from asrprune.data.audio import load_audio
from asrprune.data.features import FbankConfig, compute_fbank, speed_perturb
from asrprune.data.kaldi_dir import Utterance


def extract_features(utt: Utterance, factor: float, fbank: FbankConfig) -> torch.Tensor:
    """Filterbanks (frames, bins) of ``utt``'s audio played ``factor`` times faster."""
    return compute_fbank(speed_perturb(torch.from_numpy(load_audio(utt.wav)), factor), fbank)


class FeatureCache:
    """Filterbanks read from ``root`` when cached, else extracted and stored.

    Args:
        root: cache folder, or None to extract every time.
        fbank: filterbank settings (part of the cache path, so other settings never read these files).
    """

    def __init__(self, root: str | Path | None, fbank: FbankConfig = FbankConfig()):
        self.root = Path(root) if root is not None else None
        self.fbank = fbank

    def path(self, utt: Utterance, factor: float) -> Path:
        return self.root / f"fbank{self.fbank.num_mel_bins}" / f"sp{factor:g}" / utt.lang / f"{utt.uttid}.npy"

    def features(self, utt: Utterance, factor: float = 1.0) -> torch.Tensor:
        """Float32 filterbanks (frames, bins) of ``utt`` at speed ``factor``."""
        if self.root is None:
            return extract_features(utt, factor, self.fbank)
        path = self.path(utt, factor)
        try:
            if path.stat().st_mtime >= os.stat(utt.wav).st_mtime:
                return torch.from_numpy(np.load(path).astype(np.float32))
        except (FileNotFoundError, ValueError, EOFError):
            pass  # not cached yet, or a damaged file: extract again below
        feats = extract_features(utt, factor, self.fbank)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, feats.numpy().astype(np.float16))
        tmp.replace(path)
        return feats
