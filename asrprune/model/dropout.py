"""Dropout that draws its keep-mask from uniform samples, used for the conformer's dropouts on the CPU.

Why not ``torch.nn.Dropout`` as it is: on the CPU its mask comes from ``Tensor.bernoulli_(p)``, which on the
project's 2-core machines was slower than drawing as many uniform samples, and an operator profile of a bf16 training
step of the mini model ranked it second after the convolutions (``benchmarks/train_step_profile.py profile
--ops-steps N`` records the operator times; the A/B is its ``torchdropout`` variant). ``uniform < p`` is the same
Bernoulli(1 - p) keep-mask with the same 1 / (1 - p) scaling, drawn from the same default generator, so a run stays
reproducible for a seed. No library ships a faster CPU dropout; on other devices (CUDA's fused kernel) and in eval
mode this is exactly ``nn.Dropout``.
"""
from __future__ import annotations

import torch
from torch import nn


class UniformMaskDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training mask is ``uniform >= p``; elsewhere the parent's forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: any shape and float dtype; returns x with elements zeroed with probability p, the rest scaled."""
        if not self.training or x.device.type != "cpu" or not 0.0 < self.p < 1.0 or self.inplace:
            return super().forward(x)
        keep = torch.rand(x.shape, dtype=torch.float32) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


def use_uniform_mask_dropout(module: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` inside ``module`` by a :class:`UniformMaskDropout` of the same ``p``, in
    place (dropouts hold no weights: state dicts are unchanged). Returns how many were replaced."""
    replaced = 0
    for parent in module.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, UniformMaskDropout(child.p, child.inplace))
                replaced += 1
    return replaced
