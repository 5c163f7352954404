"""Loading a tagger exported by ``spacy seqlab-export-hf`` with plain transformers + peft + torch.

This module imports nothing from spaCy, thinc or the rest of spacy-seqlab, so it can be copied
next to an export and used where spacy-seqlab is not installed. An export folder holds:

* ``config.json``: the base's config with ``id2label``/``label2id`` (the tags, e.g. ``B-PER``) and a
  ``seqlab`` table: what the loader must install (``exit_layer``, ``unmask_layers``, ``repeat``) and
  how the pipeline reads tokens (``pooling``, ``window``, ``stride``). With ``exit_layer`` (the
  number of decoder layers that ran, null when all did) ``num_hidden_layers`` is already that count;
* with LoRA, a standard peft adapter (``adapter_config.json``, task ``TOKEN_CLS``, the tag head as a
  module to save, ``base_model_name_or_path`` and ``revision`` the base's hub name where known)
  and, when the base cannot be named exactly by the hub, the base itself in ``base/``;
  without LoRA, the whole ``*ForTokenClassification`` model;
* the tokenizer.

:func:`load_exported` returns the model and tokenizer; ``softmax(model(**batch).logits)`` are the
pipeline's tag probabilities per sub-word piece. The pipeline's token score is its first piece's
(``pooling = "first"``), last piece's (``"last"``) or the mean of its pieces' logits (``"mean"``),
for texts within one window (``window`` pieces); longer texts are read in windows by the pipeline.

With ``repeat = k`` the loader's hooks on the bare transformer feed it each row's non-padding tokens
``k + 1`` times in a row (right padding after the copies, positions from 0, as the pipeline lays out a
window) and return the hidden states of the last copy at the row's own columns: inputs and logits keep
their shape and any padding side works. ``inputs_embeds``, ``position_ids`` and a KV cache are refused
then; ``output_hidden_states`` are those of the last copy too, attention maps (``output_attentions``)
span all copies.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

SEQLAB_KEY = "seqlab"  # the table in config.json
BASE_DIR = "base"  # the base model, when the export carries it
ADAPTER_CONFIG = "adapter_config.json"
# This module's attention function (its own name, so it never replaces the pipeline's
# seqlab_sdpa in a process that runs both) and the per-layer flag both read.
ATTN_IMPLEMENTATION = "seqlab_unmaskable_sdpa"
BIDIRECTIONAL_FLAG = "seqlab_unmasked"
REPETITION_ATTRIBUTE = "seqlab_repetition"  # the hooks installed on a bare transformer


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
    # As in the pipeline: layers are dropped first, and unmask_layers index the layers that run.
    exit_after(transformer, settings.get("exit_layer"))
    unmask_layers(transformer, settings.get("unmask_layers") or [])
    repeat_input(transformer, settings.get("repeat") or 0)


def exit_after(transformer: torch.nn.Module, depth: Optional[int]) -> None:
    """Keep the first ``depth`` decoder layers and make the final norm the identity (``depth`` null:
    the whole model ran), so the output is hidden state ``depth`` of the full model, as in the pipeline."""
    if depth is None:
        return
    layers, norm = getattr(transformer, "layers", None), getattr(transformer, "norm", None)
    if not (isinstance(layers, torch.nn.ModuleList) and isinstance(norm, torch.nn.Module)):
        raise ValueError(
            f"exit_layer = {depth} needs a decoder with layers and a final norm: {type(transformer).__name__}"
        )
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= len(layers):
        raise ValueError(f"exit_layer = {depth!r} is not a layer count between 1 and {len(layers)}")
    transformer.layers = torch.nn.ModuleList(list(layers)[:depth])
    config = transformer.config
    config.num_hidden_layers = depth
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:depth]
    transformer.norm = torch.nn.Identity()


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


def repeat_input(transformer: torch.nn.Module, repeat: int) -> None:
    """Make the bare transformer read each row ``repeat + 1`` times and answer from the last copy
    (see the module docstring); ``repeat = 0`` removes hooks an earlier call installed."""
    previous = getattr(transformer, REPETITION_ATTRIBUTE, None)
    if previous is not None:
        previous.remove()
        delattr(transformer, REPETITION_ATTRIBUTE)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 0:
        raise ValueError(f"repeat must be a whole number >= 0, got {repeat!r}")
    if repeat:
        setattr(transformer, REPETITION_ATTRIBUTE, _Repetition(transformer, repeat))


class _Repetition:
    """A forward pre-hook that lays out the repeated input and a forward hook that reads the last copy."""

    def __init__(self, transformer: torch.nn.Module, repeat: int) -> None:
        self.repeat = repeat
        self.max_positions = getattr(transformer.config, "max_position_embeddings", None)
        self.source: Optional[torch.Tensor] = None  # (batch, length): the output row of each input column
        self.handles = [
            transformer.register_forward_pre_hook(self.before, with_kwargs=True),
            transformer.register_forward_hook(self.after),
        ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def before(self, module: torch.nn.Module, args: Sequence[Any], kwargs: Dict[str, Any]) -> Tuple[tuple, dict]:
        if len(args) > 2:
            raise ValueError("With repeat, pass the model input_ids and attention_mask (by name)")
        kwargs = dict(kwargs, **dict(zip(("input_ids", "attention_mask"), args)))
        refused = [
            name for name in ("inputs_embeds", "position_ids", "past_key_values") if kwargs.get(name) is not None
        ]
        if refused or kwargs.get("input_ids") is None:
            raise ValueError(
                f"repeat = {self.repeat}: the model repeats its input_ids itself; pass input_ids (and attention_mask) "
                f"without inputs_embeds, position_ids or past_key_values (got {refused or 'no input_ids'})"
            )
        ids = kwargs["input_ids"]
        mask = kwargs.get("attention_mask")
        real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        n = real.sum(dim=1, keepdim=True)  # (batch, 1)
        copies = self.repeat + 1
        longest = int(n.max()) if n.numel() else 0
        width = copies * longest
        if self.max_positions and width > self.max_positions:
            raise ValueError(
                f"repeat = {self.repeat}: {copies} copies of {longest} tokens exceed the model's "
                f"{self.max_positions} positions; pass shorter rows (at most {self.max_positions // copies} tokens)"
            )
        # The row's real tokens first, in order (stable sort), whatever side its padding is on.
        order = torch.argsort((~real).to(torch.int8), dim=1, stable=True)
        packed = ids.gather(1, order)
        column = torch.arange(width, device=ids.device)[None, :]
        used = column < copies * n
        kwargs["input_ids"] = packed.gather(1, column % n.clamp(min=1))  # the padding after the copies is masked
        kwargs["attention_mask"] = used.to(mask.dtype if mask is not None else torch.long)
        kwargs["use_cache"] = False
        # Column c holds the row's i-th real token (i = its rank); it is read at row k·n + i of the output.
        rank = torch.argsort(order, dim=1)
        self.source = (self.repeat * n + rank).clamp(max=max(width - 1, 0))
        return (), kwargs

    def after(self, module: torch.nn.Module, args: Any, output: Any) -> Any:
        source, self.source = self.source, None
        if source is None:
            return output

        def last_copy(states: torch.Tensor) -> torch.Tensor:
            return states.gather(1, source[..., None].expand(-1, -1, states.shape[-1]))

        if isinstance(output, tuple) and not hasattr(output, "last_hidden_state"):
            return (last_copy(output[0]),) + tuple(output[1:])
        output.last_hidden_state = last_copy(output.last_hidden_state)
        if getattr(output, "hidden_states", None) is not None:
            output.hidden_states = tuple(last_copy(states) for states in output.hidden_states)
        return output
