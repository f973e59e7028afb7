"""CTC output layers: phone embeddings E (V, D) whose inner products with encoder frames give the logits.

Every output layer computes ``logits[b, t, v] = <h[b, t], E[v]>`` with no per-phone bias, so layers differ only in
how E is made. ``flat`` learns one free vector per phone (the baseline); ``joinap_linear`` and
``joinap_nonlinear`` derive E from fixed phonological vectors P (V, 51) through a learned map shared by all
phones (JoinAP, Zhu et al. 2021; see :mod:`asrprune.phonology.phonological_vectors`). The layer is chosen in the
YAML config (``output_layer.type``); the other keys of ``output_layer`` are passed to its constructor.

Every layer can be moved to another token list with :meth:`PhoneEmbeddingOutput.with_tokens` (crosslingual
transfer): JoinAP layers rebuild P and keep their learned maps, so a phone never seen in training still gets an
embedding from its features; the flat layer can only keep the rows of shared phones.
"""
from __future__ import annotations

import copy
import logging
from typing import Callable, Sequence

import torch
from torch import nn

from asrprune.phonology.phonological_vectors import vector_matrix

logger = logging.getLogger(__name__)


class PhoneEmbeddingOutput(nn.Module):
    """Base class: subclasses implement :meth:`embeddings` and :meth:`with_tokens`; ``tokens`` is the token list."""

    tokens: list[str]

    def embeddings(self) -> torch.Tensor:
        """The phone embedding matrix E, float (V, D)."""
        raise NotImplementedError

    def with_tokens(self, tokens: Sequence[str]) -> PhoneEmbeddingOutput:
        """A copy of this layer over the token list ``tokens`` (V' tokens, ``<blank>`` first); self is unchanged."""
        raise NotImplementedError

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) from encoder output ``hidden`` (B, T, D)."""
        return hidden @ self.embeddings().t()


class FlatPhoneEmbedding(PhoneEmbeddingOutput):
    """A free, learned D-dimensional vector per token (the flat-phone baseline)."""

    def __init__(self, tokens: Sequence[str], dim: int):
        super().__init__()
        self.tokens = list(tokens)
        self.weight = nn.Parameter(torch.empty(len(tokens), dim))
        nn.init.normal_(self.weight, std=dim**-0.5)

    def embeddings(self) -> torch.Tensor:
        return self.weight

    def with_tokens(self, tokens: Sequence[str]) -> FlatPhoneEmbedding:
        """Rows of tokens shared with the current list are copied exactly; new tokens get fresh, untrained rows.

        This is the paper's flat baseline for crosslingual transfer (unseen phones get random rows). The counts
        of kept and new rows are logged (a warning naming the new tokens if there are any).
        """
        swapped = FlatPhoneEmbedding(tokens, self.weight.shape[1]).to(self.weight)
        old_index = {token: row for row, token in enumerate(self.tokens)}
        shared = [(row, old_index[token]) for row, token in enumerate(swapped.tokens) if token in old_index]
        if shared:
            new_rows, old_rows = zip(*shared)
            with torch.no_grad():
                swapped.weight[list(new_rows)] = self.weight[list(old_rows)]
        untrained = [token for token in swapped.tokens if token not in old_index]
        dropped = len(self.tokens) - len(shared)
        message = (
            f"flat output layer: kept {len(shared)} trained rows, {len(untrained)} new untrained rows, "
            f"dropped {dropped} rows of tokens not in the new list"
        )
        if untrained:
            logger.warning("%s: %s", message, " ".join(untrained))
        else:
            logger.info(message)
        return swapped


class JoinAPOutput(PhoneEmbeddingOutput):
    """Base of the JoinAP layers: the fixed phonological vectors P of the tokens.

    P (V, 55; V, 51 in the reference layout with ``supplementary_features=False``) is a non-persistent buffer: it
    is derived from the token list, which checkpoints keep in the model's hyperparameters, so it is rebuilt rather
    than stored.

    ``supplementary_features`` defaults to True: in the 51-dim reference layout German and French ``e``/``ɐ`` and
    Spanish/Italian ``r``/``ɾ`` get identical vectors (benchmarks/results/joinap_vectors.md), so a pure JoinAP
    layer could not tell them apart inside one language. The four extra bits separate every collision we found.
    """

    def __init__(self, tokens: Sequence[str], supplementary_features: bool = True):
        super().__init__()
        self.tokens = list(tokens)
        self.supplementary_features = supplementary_features
        self.register_buffer("vectors", vector_matrix(self.tokens, supplementary_features), persistent=False)

    def with_tokens(self, tokens: Sequence[str]) -> JoinAPOutput:
        """The same learned maps over ``tokens``: only P is rebuilt, so unseen phones get embeddings too."""
        swapped = copy.deepcopy(self)
        swapped.tokens = list(tokens)
        swapped.vectors = vector_matrix(swapped.tokens, self.supplementary_features).to(self.vectors)
        return swapped

    def _start_with_flat_spread(self, last_map: nn.Linear) -> None:
        """Rescale the last learned map so that the initial embeddings spread like the flat layer's rows.

        PyTorch's default ``nn.Linear`` initialisation gives E = A·P rows about 2.5 times the flat layer's scale
        (P has ~24 active bits per phone) and A2·sigmoid(A1·P) rows about 2.7 times smaller, and we measured the
        linear layer training markedly slower from it (benchmarks/joinap_vectors.py). The paper does not say how
        A is initialised, so we start every layer alike: the embeddings, centred over tokens (a component shared by
        all tokens cancels in the softmax), get the flat layer's per-entry std of dim^-0.5. The bias, which only
        adds that shared component, starts at zero.
        """
        dim = last_map.out_features
        with torch.no_grad():
            last_map.bias.zero_()
            embeddings = self.embeddings()
            spread = (embeddings - embeddings.mean(dim=0)).std()
            last_map.weight.mul_(dim**-0.5 / spread)


class JoinAPLinear(JoinAPOutput):
    """JoinAP-Linear: E = A(P), A a learned linear map from the vector width to the encoder width ``dim``.

    A keeps its bias: it adds ``h . b`` to every token's logit alike, which cancels in the softmax, so the layer
    still has no per-phone bias.
    """

    def __init__(self, tokens: Sequence[str], dim: int, supplementary_features: bool = True):
        super().__init__(tokens, supplementary_features)
        self.projection = nn.Linear(self.vectors.shape[1], dim)  # the paper's A
        self._start_with_flat_spread(self.projection)

    def embeddings(self) -> torch.Tensor:
        return self.projection(self.vectors)


class JoinAPNonlinear(JoinAPOutput):
    """JoinAP-Nonlinear: E = A2(sigmoid(A1(P))); A1 maps the vector width to ``hidden``, A2 ``hidden`` to ``dim``.

    The bias of A2 cancels in the softmax like A's in :class:`JoinAPLinear`; the bias of A1 does not (it acts
    inside the sigmoid).
    """

    def __init__(self, tokens: Sequence[str], dim: int, hidden: int = 512, supplementary_features: bool = True):
        super().__init__(tokens, supplementary_features)
        self.hidden_projection = nn.Linear(self.vectors.shape[1], hidden)  # the paper's A1
        self.output_projection = nn.Linear(hidden, dim)  # the paper's A2
        self._start_with_flat_spread(self.output_projection)

    def embeddings(self) -> torch.Tensor:
        return self.output_projection(torch.sigmoid(self.hidden_projection(self.vectors)))


OUTPUT_LAYERS: dict[str, Callable[..., PhoneEmbeddingOutput]] = {
    "flat": FlatPhoneEmbedding,
    "joinap_linear": JoinAPLinear,
    "joinap_nonlinear": JoinAPNonlinear,
}


def build_output_layer(config: dict, tokens: Sequence[str], dim: int) -> PhoneEmbeddingOutput:
    """Build the output layer named by ``config['type']`` over ``tokens`` for encoder width ``dim``."""
    options = dict(config)
    kind = options.pop("type", "flat")
    if kind not in OUTPUT_LAYERS:
        raise ValueError(f"output_layer.type {kind!r} is unknown; choose one of {sorted(OUTPUT_LAYERS)}")
    return OUTPUT_LAYERS[kind](tokens, dim, **options)
