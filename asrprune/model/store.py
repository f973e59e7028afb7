"""The one reader and writer of model files: :func:`save_model` writes every kind, :func:`load_model` reads every
kind back as a :class:`StoredModel` (a :class:`ConformerCTC` and the hyperparameters that rebuild it).

Every kind holds the hyperparameters (``hyper_parameters``) that rebuild the network before its weights are
loaded, so one reader serves them all:

- **dense** and **masked** models, and **resized** (structurally pruned, :mod:`asrprune.pruning.autodfp`) ones: the
  layout of a Lightning checkpoint, ``{"state_dict": {"model.<ConformerCTC key>": tensor}, "hyper_parameters",
  "pytorch-lightning_version"}``; ``hyper_parameters["model"]["masks"]`` is the mask spec of a masked model (its
  masks, θ and scores are parametrization state in ``state_dict``) and ``hyper_parameters["model"]
  ["encoder_widths"]`` the layer widths of a resized one. The Trainer's own checkpoints (``best.ckpt``,
  ``last.ckpt``, with optimizer state) are read the same way.
- **compact sparse exports** (``asrprune prune export``): ``{"format": SPARSE_FORMAT, "hyper_parameters",
  "encoder_prefix", "dense", "sparse"}``, the kept values of each masked weight and its mask rows bit-packed
  (:func:`asrprune.model.mask_storage.pack_sparse`).

Writes are atomic (:func:`asrprune.files.atomic_torch_save`); an unreadable file stops with one line naming it
(:class:`asrprune.files.CorruptCheckpoint`), a readable file of another kind with a ``ValueError`` naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import torch

from asrprune.files import atomic_torch_save, read_checkpoint
from asrprune.model.conformer_ctc import ConformerCTC
from asrprune.model.mask_storage import SPARSE_FORMAT, is_sparse_export, pack_sparse, unpack_sparse

# Key prefix of the network's weights in a checkpoint's ``state_dict`` (the Lightning module holds it as ``model``),
# and of its encoder (where the masked weights are).
STATE_PREFIX = "model."
ENCODER_PREFIX = STATE_PREFIX + "encoder."


@dataclass
class StoredModel:
    """A network and the hyperparameters it is built from.

    ``hparams``: ``tokens`` (token list, ``<blank>`` first), ``language_tokens`` (``{lang: [token]}``; the key order
    fixes the language ids), ``model`` (keyword arguments of :class:`ConformerCTC`: ``num_mel_bins``, ``encoder``,
    ``output_layer``, ``masks`` spec, ``encoder_widths``, ...), ``target_unit`` (``"phone"`` or ``"subword"``), and
    what training recorded (``optim``, ``max_steps``), carried unchanged. They must describe ``model``.
    """

    model: ConformerCTC
    hparams: dict

    @property
    def tokens(self) -> list[str]:
        return self.model.tokens

    @property
    def languages(self) -> list[str]:
        """Language codes in language-id order."""
        return self.model.languages

    @property
    def target_unit(self) -> str:
        return self.hparams["target_unit"]

    @property
    def num_mel_bins(self) -> int:
        """Filterbank bins the model reads (its CMVN statistics' size)."""
        return self.model.cmvn.mean.numel()


def save_model(stored: StoredModel, path: str | Path, mask_rows: Sequence[int] | None = None) -> None:
    """Write ``stored`` to ``path`` atomically (a kill leaves the old file or the new one).

    Without ``mask_rows``: the Lightning checkpoint layout (dense, masked and resized models alike; their
    hyperparameters say which), which ``CTCModule.load_from_checkpoint`` reads too. With ``mask_rows`` (indices into
    the model's mask rows): the compact sparse export keeping those rows only, without scores; ``stored.hparams``
    then describe the exported model: its ``language_tokens`` and mask spec fit the rows kept (``per_language``: one
    row per language; else one shared row), e.g. one language's pathway as a monolingual model.
    """
    if mask_rows is None:
        atomic_torch_save({"state_dict": _prefixed_state(stored.model), "hyper_parameters": dict(stored.hparams),
                           "pytorch-lightning_version": version("lightning")}, path)
        return
    masks = stored.model.masks
    if masks is None:
        raise ValueError(f"{path}: a dense model has no masks to export compactly")
    hparams = dict(stored.hparams)
    spec = {**masks.spec, **(hparams["model"].get("masks") or {}), "scores": False, "dormant_trainable": False}
    expected = len(hparams["language_tokens"]) if spec["per_language"] else 1
    if len(mask_rows) != expected:
        raise ValueError(f"{path}: {len(mask_rows)} mask rows for a mask spec {spec} over "
                         f"{len(hparams['language_tokens'])} languages (expected {expected})")
    hparams["model"] = {**hparams["model"], "masks": spec}
    packed = pack_sparse(_prefixed_state(stored.model), masks, list(mask_rows), ENCODER_PREFIX)
    atomic_torch_save({"format": SPARSE_FORMAT, "hyper_parameters": hparams, "encoder_prefix": ENCODER_PREFIX,
                       **packed}, path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> StoredModel:
    """The model in ``path`` (any kind :func:`save_model` writes, or a Trainer checkpoint), in eval mode on
    ``device``.

    Read on the CPU (unpacking bit-packed masks goes through numpy), then moved. A missing file raises
    ``FileNotFoundError``, an unreadable one :class:`~asrprune.files.CorruptCheckpoint`, and a file that is no
    model or whose weights do not fit its hyperparameters ``ValueError``, each naming ``path``.
    """
    stored = read_checkpoint(path)
    hparams = stored.get("hyper_parameters") if isinstance(stored, dict) else None
    if hparams is None or not (is_sparse_export(stored) or "state_dict" in stored):
        raise ValueError(f"{path}: not a model file (no hyper_parameters and weights; a checkpoint of asrprune "
                         "train, add-language, prune or autodfp is one)")
    state = unpack_sparse(stored, stored["encoder_prefix"]) if is_sparse_export(stored) else stored["state_dict"]
    hparams = dict(hparams)
    model = ConformerCTC(hparams["tokens"], hparams["language_tokens"], **hparams["model"])
    network = {key[len(STATE_PREFIX):]: value for key, value in state.items() if key.startswith(STATE_PREFIX)}
    try:
        missing, unexpected = model.load_state_dict(network, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise ValueError(f"{path}: the weights do not fit the model its hyperparameters describe "
                         f"({str(error).strip().splitlines()[-1].strip()})") from error
    unexpected += [key for key in state if not key.startswith(STATE_PREFIX)]
    if missing or unexpected:
        raise ValueError(f"{path}: the weights do not fit the model its hyperparameters describe (missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]})")
    return StoredModel(model.to(device).eval(), hparams)


def _prefixed_state(model: ConformerCTC) -> dict[str, torch.Tensor]:
    """``model``'s state dict under the checkpoint keys (:data:`STATE_PREFIX`)."""
    return {STATE_PREFIX + key: value for key, value in model.state_dict().items()}
