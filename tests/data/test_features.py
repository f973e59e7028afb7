"""Filterbanks, speed perturbation, CMVN statistics and the on-disk feature cache."""
from __future__ import annotations

import os

import numpy as np
import torch

from asrprune.data import feature_cache
from asrprune.data.audio import write_wav
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import CMVNAccumulator, compute_fbank, speed_perturb
from asrprune.data.kaldi_dir import Utterance


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_fbank_shape_and_frame_count():
    feats = compute_fbank(torch.from_numpy(tone(1.0)))
    assert feats.shape == (1 + (16000 - 400) // 160, 80)


def test_speed_perturbation_changes_duration_and_pitch():
    wave = torch.from_numpy(tone(1.0, 1000.0))
    faster = speed_perturb(wave, 1.1)
    assert abs(len(faster) - 16000 / 1.1) <= 1
    assert len(speed_perturb(wave, 0.9)) == round(16000 / 0.9)
    assert speed_perturb(wave, 1.0) is wave
    # Playing faster raises the pitch: the spectral peak moves from 1000 Hz to about 1100 Hz.
    peak_hz = np.argmax(np.abs(np.fft.rfft(faster.numpy()))) * 16000 / len(faster)
    assert abs(peak_hz - 1100) < 10


def test_cmvn_statistics_match_numpy():
    rows = [torch.randn(50, 4) * 3 + 1, torch.randn(30, 4)]
    acc = CMVNAccumulator(4)
    for r in rows:
        acc.add(r)
    mean, std = acc.mean_std()
    stacked = torch.cat(rows).numpy()
    assert np.allclose(mean, stacked.mean(0), atol=1e-5)
    assert np.allclose(std, stacked.std(0), atol=1e-4)


def test_feature_cache_stores_reuses_and_refreshes(tmp_path, monkeypatch):
    wav = tmp_path / "a.wav"
    write_wav(wav, tone(0.5))
    utt = Utterance("spk-a", str(wav), "x", "spk", "de", 0.5, ("a",))
    cache = FeatureCache(tmp_path / "dump")
    first = cache.features(utt, 0.9)
    path = cache.path(utt, 0.9)
    assert path.is_file() and path.parent.name == "de" and "sp0.9" in str(path)
    assert torch.allclose(first, FeatureCache(None).features(utt, 0.9), atol=0.02)

    calls = []
    real_extract = feature_cache.extract_features
    monkeypatch.setattr(feature_cache, "extract_features", lambda *a: calls.append(a) or real_extract(*a))
    assert torch.allclose(cache.features(utt, 0.9), first, atol=0.02)
    assert calls == []  # served from disk
    # New audio (newer than the cached file) is extracted again.
    write_wav(wav, tone(0.5, 880.0))
    os.utime(path, (path.stat().st_mtime - 10, path.stat().st_mtime - 10))
    refreshed = cache.features(utt, 0.9)
    assert len(calls) == 1 and not torch.allclose(refreshed, first, atol=0.5)
