"""Layer-wise removal of a decoder's causal attention mask (Dukić & Šnajder, arXiv 2401.14556).

``unmask`` settings:

* ``"none"`` (causal everywhere) or ``"all"``;
* a bit string over equal contiguous layer groups, left bit = the group nearest the input:
  ``"0011"`` on 32 layers unmasks layers 16-31; its length must divide the number of layers;
* a list of layer indices.

In an unmasked layer every token attends to every non-padding token; padding stays masked
in every layer. The mechanism is the ``seqlab_sdpa`` attention function (:mod:`.attention`)
and a flag on each layer's attention module; no model code is copied.
"""

import re
from typing import List, Sequence, Union

import torch

from .attention import (
    ATTN_IMPLEMENTATION,
    BIDIRECTIONAL_FLAG,
    SUPPORTED_MODEL_TYPES,
    install_attention,
)

UnmaskSpec = Union[str, Sequence[int]]
_ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "deberta-v2", "electra", "distilbert", "mpnet")


def validate_unmask(spec: UnmaskSpec) -> None:
    """Check the form of an ``unmask`` setting (layer counts are checked once the model is known)."""
    if isinstance(spec, str):
        if spec in ("none", "all") or re.fullmatch(r"[01]+", spec):
            return
        raise ValueError(
            "unmask must be 'none', 'all', a bit string of 0/1 over layer groups (e.g. '0011') or a list of layer "
            f"indices, got {spec!r}"
        )
    if not isinstance(spec, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
        raise ValueError(f"unmask as a list must hold layer indices (integers), got {spec!r}")


def unmasked_layers(spec: UnmaskSpec, n_layers: int) -> List[int]:
    """The layer indices an ``unmask`` setting selects in a model with ``n_layers`` layers."""
    validate_unmask(spec)
    if spec == "none":
        return []
    if spec == "all":
        return list(range(n_layers))
    if isinstance(spec, str):
        if n_layers % len(spec):
            raise ValueError(
                f"unmask = {spec!r} has {len(spec)} groups, which does not divide the model's {n_layers} layers; "
                f"use a group count among {[g for g in range(1, n_layers + 1) if n_layers % g == 0]}"
            )
        size = n_layers // len(spec)
        return [
            layer for group, bit in enumerate(spec) if bit == "1" for layer in range(group * size, (group + 1) * size)
        ]
    bad = [i for i in spec if not 0 <= i < n_layers]
    if bad:
        raise ValueError(
            f"unmask layer indices {bad} are out of range for a model with {n_layers} layers (0..{n_layers - 1})"
        )
    return sorted(set(spec))


def _attention_modules(model: torch.nn.Module) -> List[torch.nn.Module]:
    """The self-attention module of each decoder layer, in layer order."""
    layers = getattr(model, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no decoder layers to unmask")
    return [layer.self_attn for layer in layers]


def apply_unmasking(model: torch.nn.Module, spec: UnmaskSpec) -> List[int]:
    """Remove the causal mask in the layers ``spec`` selects of a base decoder (and restore it
    in the others); returns the unmasked layers. A supported decoder on SDPA gets the
    ``seqlab_sdpa`` attention function in any case, for its faster grouped-query attention."""
    config = model.config
    model_type = getattr(config, "model_type", None)
    if spec in ("none", [], ()):
        install_attention(model)
        for module in _attention_modules(model) if hasattr(model, "layers") else []:
            setattr(module, BIDIRECTIONAL_FLAG, False)
        return []
    if model_type not in SUPPORTED_MODEL_TYPES:
        if model_type in _ENCODER_TYPES:
            if spec == "all":
                return []  # an encoder already attends both ways
            raise ValueError(
                f"unmask = {spec!r} on {model_type!r}: it is an encoder, already bidirectional; use 'none'"
            )
        raise ValueError(
            f"unmask is not supported for model type {model_type!r}: supported decoder families are "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    current = getattr(config, "_attn_implementation", None)
    if current not in (None, "sdpa", ATTN_IMPLEMENTATION):
        raise ValueError(
            f"unmask works with SDPA attention; the model uses attn_implementation = {current!r}: set it to 'sdpa' "
            "or leave it unset"
        )
    attention = _attention_modules(model)
    layers = unmasked_layers(spec, len(attention))
    install_attention(model)
    for index, module in enumerate(attention):
        setattr(module, BIDIRECTIONAL_FLAG, index in layers)
    return layers
