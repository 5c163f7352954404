"""Loading a tagger exported by ``spacy seqlab-export-hf`` with plain transformers + peft + torch.

This module imports nothing from spaCy, thinc or the rest of spacy-seqlab, so it can be copied
next to an export and used where spacy-seqlab is not installed. An export folder holds:

* ``config.json``: the base's config with ``id2label``/``label2id`` (the tags, e.g. ``B-PER``) and a
  ``seqlab`` table: what the loader must install (``unmask_layers``) and how the pipeline reads
  tokens (``pooling``, ``window``, ``stride``);
* with LoRA, a standard peft adapter (``adapter_config.json``, task ``TOKEN_CLS``, the tag head as a
  module to save, ``base_model_name_or_path`` and ``revision`` the base's hub name where known)
  and, when the base cannot be named exactly by the hub, the base itself in ``base/``;
  without LoRA, the whole ``*ForTokenClassification`` model;
* the tokenizer.

:func:`load_exported` returns the model and tokenizer; ``softmax(model(**batch).logits)`` are the
pipeline's tag probabilities per sub-word piece. The pipeline's token score is its first piece's
(``pooling = "first"``), last piece's (``"last"``) or the mean of its pieces' logits (``"mean"``),
for texts within one window (``window`` pieces); longer texts are read in windows by the pipeline.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

SEQLAB_KEY = "seqlab"  # the table in config.json
BASE_DIR = "base"  # the base model, when the export carries it
ADAPTER_CONFIG = "adapter_config.json"
# This module's attention function (its own name, so it never replaces the pipeline's
# seqlab_sdpa in a process that runs both) and the per-layer flag both read.
ATTN_IMPLEMENTATION = "seqlab_unmaskable_sdpa"
BIDIRECTIONAL_FLAG = "seqlab_unmasked"


def load_exported(
    path: Union[str, Path], *, base: Optional[str] = None, dtype: Optional[torch.dtype] = None
) -> Tuple[torch.nn.Module, Any]:
    """The exported tagger at ``path`` (a ``*ForTokenClassification`` model, wrapped by peft when
    it has a LoRA adapter) in eval mode, and its tokenizer.

    ``base`` overrides where an adapter's base model is loaded from (a hub name or a folder);
    by default it is ``path/base`` when the export carries it, else the hub name and revision
    recorded in ``adapter_config.json``. ``dtype``: the weights' dtype, by default the one the
    pipeline computed in.
    """
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a seqlab-export-hf folder: it has no config.json")
    config = AutoConfig.from_pretrained(path)
    if not isinstance(getattr(config, SEQLAB_KEY, None), dict):
        raise ValueError(f"{path / 'config.json'} has no {SEQLAB_KEY!r} table: it was not written by seqlab-export-hf")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if dtype is None:
        dtype = getattr(torch, config.seqlab.get("dtype") or "float32")
    if not (path / ADAPTER_CONFIG).is_file():
        model = AutoModelForTokenClassification.from_pretrained(path, torch_dtype=dtype)
    else:
        from peft import PeftConfig, PeftModel

        adapter = PeftConfig.from_pretrained(path)
        source, revision = _base_source(path, adapter, base)
        kwargs: Dict[str, Any] = {"revision": revision} if revision else {}
        model = AutoModelForTokenClassification.from_pretrained(source, config=config, torch_dtype=dtype, **kwargs)
        model = PeftModel.from_pretrained(model, path)
    adapt_backbone(bare_transformer(model), config.seqlab)
    return model.eval(), tokenizer


def _base_source(path: Path, adapter: Any, base: Optional[str]) -> Tuple[str, Optional[str]]:
    if base is not None:
        return base, None
    if (path / BASE_DIR / "config.json").is_file():
        return str(path / BASE_DIR), None
    if not adapter.base_model_name_or_path:
        raise ValueError(
            f"The adapter at {path} records no base model and carries none in {BASE_DIR}/: pass base= (a hub name "
            "or the folder of the base model it was trained on)"
        )
    return adapter.base_model_name_or_path, adapter.revision


def bare_transformer(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer inside a (peft-wrapped) ``*ForTokenClassification`` model."""
    get_base = getattr(model, "get_base_model", None)
    model = get_base() if get_base is not None else model
    return getattr(model, model.base_model_prefix, model)


def adapt_backbone(transformer: torch.nn.Module, settings: Dict[str, Any]) -> None:
    """Make the bare transformer compute what the pipeline's backbone computed: the one place
    where export-time settings (``config.json``'s ``seqlab`` table) change the model."""
    unmask_layers(transformer, settings.get("unmask_layers") or [])


def unmask_layers(transformer: torch.nn.Module, layers: List[int]) -> None:
    """Remove the causal mask in the given decoder layers (padding stays masked), as the pipeline did."""
    if not layers:
        return
    attention = [layer.self_attn for layer in transformer.layers]
    bad = [i for i in layers if not 0 <= i < len(attention)]
    if bad:
        raise ValueError(f"unmask_layers {bad} are out of range for a model with {len(attention)} layers")
    _register_attention()
    transformer.config._attn_implementation = ATTN_IMPLEMENTATION
    for index, module in enumerate(attention):
        setattr(module, BIDIRECTIONAL_FLAG, index in layers)


def _unmaskable_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    **kwargs: Any,
) -> Tuple[torch.Tensor, None]:
    """transformers' SDPA attention; in a flagged layer every query sees every non-padding key."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if getattr(module, BIDIRECTIONAL_FLAG, False):
        if attention_mask is not None:
            # A key is padding iff no query sees it (each real key is visible at least to itself).
            attention_mask = attention_mask.any(dim=2, keepdim=True).expand(-1, -1, query.shape[2], -1)
        kwargs["is_causal"] = False
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    if ATTN_IMPLEMENTATION not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionInterface.register(ATTN_IMPLEMENTATION, _unmaskable_sdpa)
        AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)
