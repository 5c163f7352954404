"""The attention function spacy-seqlab installs in the decoders it supports: PyTorch SDPA, plus

* **grouped-query attention without copies** on CPU: transformers' ``sdpa`` repeats every
  key/value head once per query head before calling SDPA (``repeat_kv``), a copy of the
  whole KV cache in every layer at every step; on CPU that copy was most of a batched
  decoding step. SDPA's ``enable_gqa`` reads the shared heads in place. On other devices
  the copying path is kept, since not every GPU kernel takes ``enable_gqa`` with a mask.
* **a per-layer bidirectional flag** (set by :mod:`.unmasking`): a flagged layer turns the
  causal (+ sliding-window) + padding mask it receives into a padding-only mask.

It is registered under ``seqlab_sdpa`` in transformers' attention interface, with SDPA's
mask builder, so no model code is copied or patched.
"""

from typing import Any, Optional, Tuple

import torch

ATTN_IMPLEMENTATION = "seqlab_sdpa"
# Families whose attention runs through transformers' attention interface with the
# masking_utils masks (and whose tiny versions are tested).
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
BIDIRECTIONAL_FLAG = "seqlab_unmasked"


def _padding_only(mask: torch.Tensor, n_queries: int) -> torch.Tensor:
    """(batch, 1, q, k) causal+padding bool mask → keys visible to every query unless padding.

    A key is padding iff no query sees it: every real key is at least visible to its own
    position, whatever the sliding window or the padding side.
    """
    return mask.any(dim=2, keepdim=True).expand(-1, -1, n_queries, -1)


def seqlab_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    is_causal: Optional[bool] = None,
    **kwargs: Any,
) -> Tuple[torch.Tensor, None]:
    """transformers' attention-function signature; returns (batch, queries, heads, dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if getattr(module, BIDIRECTIONAL_FLAG, False):
        if attention_mask is not None:
            attention_mask = _padding_only(attention_mask, query.shape[2])
        is_causal = False
    if query.device.type != "cpu" or kwargs.get("output_attentions") or kwargs.get("head_mask") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    if attention_mask is not None and attention_mask.ndim == 4:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
    if is_causal is None:  # as transformers decides: causal only when no mask says otherwise
        is_causal = query.shape[2] > 1 and attention_mask is None and getattr(module, "is_causal", True)
    output = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
        is_causal=is_causal,
        enable_gqa=key.shape[1] != query.shape[1],
    )
    return output.transpose(1, 2).contiguous(), None


def register() -> None:
    """Register ``seqlab_sdpa`` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import (
        ALL_MASK_ATTENTION_FUNCTIONS,
        AttentionMaskInterface,
        sdpa_mask,
    )

    if ATTN_IMPLEMENTATION not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionInterface.register(ATTN_IMPLEMENTATION, seqlab_sdpa)
        # Without a mask builder under the same name transformers would pass no padding mask at all.
        AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)


def install_attention(model: torch.nn.Module) -> bool:
    """Switch a supported decoder that uses SDPA (or the default) to ``seqlab_sdpa``; returns
    whether it did (another family, or an explicitly chosen backend such as ``eager``, is left alone)."""
    config = model.config
    if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return False
    if getattr(config, "_attn_implementation", None) not in (None, "sdpa", ATTN_IMPLEMENTATION):
        return False
    register()
    config._attn_implementation = ATTN_IMPLEMENTATION
    return True
