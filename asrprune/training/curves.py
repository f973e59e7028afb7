"""A picture of a training run: train CTC loss and dev PER per language against the step, from TensorBoard logs."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def plot_training_curves(log_dir: str | Path, out_png: str | Path) -> Path:
    """Read the scalars logged under ``log_dir`` and save a two-panel PNG to ``out_png``."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    figure, (loss_axis, per_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    if "train/loss_per_token" in scalars:
        points = events.Scalars("train/loss_per_token")
        loss_axis.plot([p.step for p in points], [p.value for p in points], color="tab:gray")
    loss_axis.set(title="training CTC loss", xlabel="step", ylabel="nats per target token", yscale="log")
    for tag in sorted(t for t in scalars if t.startswith("val/per")):
        points = events.Scalars(tag)
        label = "all languages" if tag == "val/per" else tag.removeprefix("val/per_")
        per_axis.plot([p.step for p in points], [p.value for p in points], marker="o", label=label,
                      linewidth=2.5 if tag == "val/per" else 1.2)
    per_axis.set(title="dev phone error rate (greedy)", xlabel="step", ylabel="PER (%)")
    per_axis.legend(fontsize="small")
    per_axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)
    plt.close(figure)
    return Path(out_png)
