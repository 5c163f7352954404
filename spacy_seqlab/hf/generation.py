"""Batched greedy generation with a causal LM.

Prompts are sorted by length, left-padded once per chunk of at most ``max_batch_tokens``
padded tokens, and generated with the KV cache until the end-of-sequence token. When the
prompts of a chunk start with the same tokens (the instruction, and demonstrations chosen
without regard to the query), that shared start is run once and its KV cache copied to every
row: the rows then hold ``[shared start | padding | own rest]``, with the padding masked.
Optional per-prompt constraints (e.g. :class:`spacy_seqlab.sift.constraints.LineConstraint`)
restrict each step to the tokens they allow.
"""

from typing import Any, Dict, List, Optional, Protocol, Sequence

import numpy
import torch

from ..core.batching import chunk_size
from .lora import without_adapters

# A shared prompt start shorter than this is not worth a separate forward call.
MIN_SHARED_TOKENS = 16


class TokenConstraint(Protocol):
    """What :func:`generate` asks a constraint: the token ids allowed after ``generated``."""

    def allowed(self, generated: List[int]) -> List[int]: ...


def generate(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    max_batch_tokens: int = 8192,
    constraints: Optional[Sequence[TokenConstraint]] = None,
    share_prefix: bool = True,
) -> List[str]:
    """Greedy continuations of ``prompts`` (special tokens removed), in input order.

    ``share_prefix``: run the token prefix that all prompts of a chunk share once (see the
    module docstring); the continuations are the same as without it, up to float rounding.
    """
    from transformers import GenerationConfig

    if not prompts:
        return []
    encoded = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    lengths = numpy.array([len(ids) for ids in encoded])
    order = numpy.argsort(-lengths, kind="stable")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
    )
    device = next(model.parameters()).device
    results: List[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        i = 0
        while i < len(order):
            width = int(lengths[order[i]])
            # Every row grows by max_new_tokens; padding is not bounded (on CPU more rows per decoding step pay for it).
            size = chunk_size(lengths[order[i:]] + max_new_tokens, max_batch_tokens, 1.0)
            members = order[i : i + size]
            shared = shared_prefix_length([encoded[index] for index in members]) if share_prefix and size > 1 else 0
            if shared < MIN_SHARED_TOKENS or not _supports_dynamic_cache(model):
                shared = 0
            ids = numpy.full((size, width), pad, dtype=numpy.int64)
            mask = numpy.zeros((size, width), dtype=numpy.int64)
            ids[:, :shared] = encoded[members[0]][:shared]
            mask[:, :shared] = 1
            for row, index in enumerate(members):  # left padding of each rest: the prompts end where generation starts
                ids[row, width - lengths[index] + shared :] = encoded[index][shared:]
                mask[row, width - lengths[index] + shared :] = 1
            kwargs: Dict[str, Any] = {}
            if shared:
                kwargs["past_key_values"] = _prefill(model, ids[:1, :shared], size, device)
            if constraints is not None:
                chosen = [constraints[index] for index in members]
                kwargs["prefix_allowed_tokens_fn"] = lambda row, seq, chosen=chosen, width=width: chosen[row].allowed(
                    seq[width:].tolist()
                )
            with torch.no_grad():
                output = model.generate(
                    input_ids=torch.from_numpy(ids).to(device),
                    attention_mask=torch.from_numpy(mask).to(device),
                    generation_config=config,
                    **kwargs,
                )
            texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
            for index, text in zip(members, texts):
                results[index] = text
            i += size
    finally:
        model.train(was_training)
    return results


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``sequences`` share, leaving each at least one of its own
    (generation needs a last prompt token to compute the first new one from)."""
    shortest = min(len(seq) for seq in sequences)
    if shortest < 2:
        return 0
    first = numpy.asarray(sequences[0][: shortest - 1])
    equal = numpy.ones(len(first), dtype=bool)
    for seq in sequences[1:]:  # a loop per prompt, not per token
        equal &= numpy.asarray(seq[: shortest - 1]) == first
    return int(numpy.argmin(equal)) if not equal.all() else len(first)


def _supports_dynamic_cache(model: torch.nn.Module) -> bool:
    # Models whose cache is not a DynamicCache (hybrid or static caches) get no shared prefill.
    supports = getattr(without_adapters(model), "_supports_default_dynamic_cache", None)
    return bool(supports()) if callable(supports) else False


def _prefill(model: torch.nn.Module, prefix: numpy.ndarray, rows: int, device: torch.device) -> Any:
    """The KV cache of one run over ``prefix``, repeated for ``rows`` prompts."""
    from transformers import DynamicCache

    base = without_adapters(model)
    # Only the cache is wanted: skip the vocabulary projection of all but one position where the model allows.
    extra = {"logits_to_keep": 1} if base._supports_logits_to_keep() else {}
    cache = DynamicCache()
    with torch.no_grad():
        model(input_ids=torch.from_numpy(prefix).to(device), past_key_values=cache, use_cache=True, **extra)
    cache.batch_repeat_interleave(rows)
    return cache
