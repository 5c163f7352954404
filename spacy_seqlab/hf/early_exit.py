"""Early exit: read a decoder's hidden states after layer N and never run the layers above it.

Kukić et al. (the sequence-repetition follow-up to arXiv 2401.14556) found intermediate layers of a
fine-tuned decoder as good for sequence labeling as the last one, at a fraction of the compute. The
saving is only real when the upper layers do not run, so the bare transformer keeps its first N
decoder layers (the others are dropped at install, before LoRA wraps anything) and its final norm
becomes the identity: the vectors are then exactly ``output_hidden_states[N]`` of the full model.

``exit_layer`` counts like an index into ``output_hidden_states`` without the embeddings: 1 is the
first layer, ``num_hidden_layers`` (or -1) the last, where the model is left whole; -2 is the one
below it. The model's config keeps its full layer count, so applying the setting twice (restoring a
saved model) gives the same model.
"""

from typing import Optional

import torch


def validate_exit_layer(exit_layer: Optional[int]) -> None:
    """Check the form of an ``exit_layer`` setting (its range is checked once the model is known)."""
    if exit_layer is None:
        return
    if not isinstance(exit_layer, int) or isinstance(exit_layer, bool) or exit_layer == 0:
        raise ValueError(
            "exit_layer must be a decoder layer (1 = the first, negative counts from the top: -1 = the last) or "
            f"null for all layers, got {exit_layer!r}"
        )


def exit_depth(exit_layer: Optional[int], n_layers: int) -> int:
    """How many of ``n_layers`` layers run for an ``exit_layer`` setting."""
    validate_exit_layer(exit_layer)
    if exit_layer is None:
        return n_layers
    depth = exit_layer if exit_layer > 0 else n_layers + 1 + exit_layer
    if not 1 <= depth <= n_layers:
        raise ValueError(
            f"exit_layer = {exit_layer} is outside the model's {n_layers} layers: use 1..{n_layers} or "
            f"-{n_layers}..-1 (-1 = the last layer)"
        )
    return depth


def apply_early_exit(model: torch.nn.Module, exit_layer: Optional[int]) -> int:
    """Keep the first layers of the bare decoder ``model`` that ``exit_layer`` selects and drop its
    final norm unless all layers stay; returns the number of layers that run."""
    if exit_layer is None:
        return int(getattr(model.config, "num_hidden_layers", 0) or 0)
    layers = getattr(model, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not isinstance(getattr(model, "norm", None), torch.nn.Module):
        raise ValueError(
            f"exit_layer = {exit_layer} needs a decoder with a list of layers and a final norm (Llama, Mistral, "
            f"Qwen2, Qwen3 families); {type(model).__name__} has none: set exit_layer = null"
        )
    n_layers = int(model.config.num_hidden_layers)  # the full count, also once layers were dropped
    depth = exit_depth(exit_layer, n_layers)
    if depth < n_layers:
        if len(layers) > depth:
            model.layers = torch.nn.ModuleList(list(layers)[:depth])
        # Hidden state N of the full model is the output of layer N, before the norm of the last layer.
        model.norm = torch.nn.Identity()
    return depth
