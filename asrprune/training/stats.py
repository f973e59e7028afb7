"""A Lightning callback that counts what training consumed: utterances, audio seconds and wall time."""
from __future__ import annotations

import time

import lightning as L

FRAME_SHIFT_SECONDS = 0.01


class TrainingStats(L.Callback):
    """Totals over the training batches of this run (not of resumed earlier runs), on this process."""

    def __init__(self):
        self.utterances = 0
        self.audio_seconds = 0.0
        self.steps = 0
        self.train_seconds = 0.0
        self._step_started = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._step_started
        self.steps += 1
        self.utterances += len(batch.uttids)
        self.audio_seconds += float(batch.feat_lengths.sum()) * FRAME_SHIFT_SECONDS

    def summary(self) -> dict:
        """Counts and rates; rates exclude validation and data waiting outside the step."""
        seconds = max(self.train_seconds, 1e-9)
        return {
            "steps_this_run": self.steps,
            "utterances_seen": self.utterances,
            "audio_hours_seen": round(self.audio_seconds / 3600, 3),
            "train_step_seconds": round(self.train_seconds, 1),
            "utterances_per_second": round(self.utterances / seconds, 2),
            "audio_seconds_per_second": round(self.audio_seconds / seconds, 2),
        }
