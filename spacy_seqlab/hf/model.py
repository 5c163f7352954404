"""The Hugging Face model every component shares: settings, loading, adaptation, and the torch math.

:class:`HFModel` is built empty from a :class:`ModelSettings` group and a model class (``"base"``
for hidden states, ``"causal-lm"`` with the LM head). Its weights arrive in ``initialize``
(:meth:`HFModel.load_pretrained`: a hub name, a local folder, a GGUF file or an alias registered
by :mod:`spacy_seqlab.data`; 4-bit quantization, causal-mask removal, LoRA, freezing) or from a
saved artifact (:mod:`.artifact`, without any network). Its :meth:`~HFModel.forward` is tensor
math only: ids and attention mask in, float32 vectors out; it never sees a Doc.

Thinc layers hold it in a ``PyTorchWrapper_v3`` (:mod:`.transformer`); code outside ``hf``
reaches it with :func:`hf_model_of`, never through thinc's shims.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, Union

import srsly
import torch
from thinc.api import Model, deserialize_attr, get_torch_default_device, serialize_attr

from ..core.serialization import ArtifactError
from ..core.settings import check_choice, setting, to_config
from .early_exit import apply_early_exit, validate_exit_layer
from .loading import MODEL_CLASSES, load_model, load_tokenizer, resolve_dtype, resolve_source
from .lora import LoraSettings, without_adapters
from .threads import install_fork_hook
from .unmasking import apply_unmasking, validate_unmask

T = TypeVar("T")
NOT_LOADED = "The model has no weights yet: call nlp.initialize() (or spacy train), or load a trained pipeline"


@dataclass
class ModelSettings:
    """Which pre-trained model to load and how to adapt it; stored with the weights and checked on load."""

    name: str = setting(help="A hub name, a local folder or an alias registered by spacy_seqlab.data.")
    revision: Optional[str] = setting(None, "Hub revision (branch, tag or commit) for hub names.")
    gguf_file: Optional[str] = setting(None, "A .gguf file inside the 'name' folder; converted once and cached.")
    dtype: str = setting("float32", "Weights dtype of the base: float32, bfloat16, float16 or auto.")
    attn_implementation: Optional[str] = setting(
        None, "transformers attention backend, e.g. 'sdpa' or 'eager'; default: the model's."
    )
    unmask: Union[str, List[int]] = setting(
        "none",
        "Decoder layers without the causal mask: 'none', 'all', a bit string over layer groups ('0011': upper "
        "half) or layer indices.",
    )
    exit_layer: Optional[int] = setting(
        None,
        "Read the hidden states of this decoder layer and never run the layers above it (1 = the first; negative "
        "counts from the top, -1 = the last); null: all layers. unmask then counts only the layers that run.",
    )
    lora: Optional[LoraSettings] = setting(None, "LoRA adapters (the base is then frozen); null for none.")
    freeze: bool = setting(False, "Without LoRA: keep all weights fixed (features only).")
    load_in_4bit: bool = setting(
        False, "QLoRA: load the base in 4-bit NF4 (CUDA and bitsandbytes needed); saved as adapter only."
    )
    save_base: Optional[bool] = setting(
        None,
        "Save the base weights with the pipeline (true), only the LoRA adapter (false), or decide by size (null).",
    )
    gradient_checkpointing: bool = setting(False, "Recompute activations in backward to save memory.")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a hub name, a local folder or a pypi: alias")
        resolve_dtype(self.dtype)
        if self.gguf_file is not None and (not isinstance(self.gguf_file, str) or not self.gguf_file.endswith(".gguf")):
            raise ValueError(
                f"gguf_file must be the name of a .gguf file inside the name folder, or null; got {self.gguf_file!r}"
            )
        if self.unmask not in ("none", [], ()) and self.attn_implementation not in (None, "sdpa"):
            raise ValueError(
                f"attn_implementation = {self.attn_implementation!r} with unmask = {self.unmask!r}: unmasking works "
                "on SDPA attention; set attn_implementation to null or 'sdpa', or unmask = 'none'"
            )
        validate_unmask(self.unmask)
        validate_exit_layer(self.exit_layer)
        self.lora = LoraSettings.from_config(self.lora)
        if self.lora is not None and self.freeze:
            raise ValueError("freeze = true with lora: LoRA already freezes the base; set one of them")
        if self.load_in_4bit and (self.lora is None or self.save_base):
            raise ValueError("load_in_4bit needs lora (a 4-bit base cannot be trained) and save_base = false or null")

    def to_dict(self) -> Dict[str, Any]:
        return to_config(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelSettings":
        """The settings saved with an artifact; keys of other (older) layouts are ignored."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class HFModel(torch.nn.Module):
    """A transformer and its tokenizer; empty until :meth:`load_pretrained` or :meth:`from_bytes`."""

    def __init__(self, settings: ModelSettings, model_class: str = "base") -> None:
        super().__init__()
        check_choice("model_class", model_class, MODEL_CLASSES)
        self.settings = settings
        self.model_class = model_class
        self.transformer: Optional[torch.nn.Module] = None
        self.tokenizer: Any = None
        self.prefix: List[int] = []  # special tokens the tokenizer puts before a text (BOS/CLS)
        self.suffix: List[int] = []  # ... and after it (EOS/SEP)
        self._call_kwargs: Dict[str, Any] = {}
        self._mode_modules: Optional[List[torch.nn.Module]] = None  # see train()
        install_fork_hook()  # nlp.pipe(n_process=N) forks: torch must not hang in the children

    # -- what the loaded model is ------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.transformer is not None

    def require_loaded(self) -> None:
        if self.transformer is None:
            raise RuntimeError(NOT_LOADED)

    @property
    def base_model(self) -> torch.nn.Module:
        """The transformer without LoRA wrapping."""
        self.require_loaded()
        return without_adapters(self.transformer)

    @property
    def hidden_size(self) -> int:
        config = self.base_model.config
        return int(getattr(config, "hidden_size", None) or config.n_embd)

    @property
    def max_positions(self) -> Optional[int]:
        """The longest sequence the model's position embeddings allow (None: no limit known)."""
        config = self.base_model.config
        return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)

    @property
    def pad_id(self) -> int:
        self.require_loaded()
        return int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)

    # -- building ------------------------------------------------------------------------------

    def load_pretrained(self) -> None:
        """Load the tokenizer and pre-trained weights named by the settings, then adapt them."""
        s = self.settings
        source = resolve_source(s.name, s.gguf_file)
        tokenizer = load_tokenizer(source, s.revision)
        self.install(tokenizer, self.load_base(source), apply_lora=True)

    def load_base(self, source: str) -> torch.nn.Module:
        """The pre-trained model at ``source`` (from :func:`.loading.resolve_source`), not yet adapted."""
        s = self.settings
        if not s.load_in_4bit:
            return load_model(
                source,
                kind=self.model_class,
                revision=s.revision,
                dtype=s.dtype,
                attn_implementation=s.attn_implementation,
            )
        model = load_model(
            source,
            kind=self.model_class,
            revision=s.revision,
            dtype="bfloat16",
            attn_implementation=s.attn_implementation,
            quantization_config=four_bit_config(),
        )
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=s.gradient_checkpointing)

    def install(self, tokenizer: Any, model: torch.nn.Module, *, apply_lora: bool) -> None:
        """Adapt ``model`` as the settings say (unmasking, LoRA, freezing) and make it this model's transformer."""
        s = self.settings
        self.tokenizer = tokenizer
        self.prefix, self.suffix = special_tokens_around(tokenizer)
        # Attention changes and dropped layers go on the bare transformer (inside any LM head), before LoRA wraps it.
        bare = getattr(model, model.base_model_prefix, model)
        # Layers are dropped first, so that unmask counts the layers that run (also when a saved model is restored).
        apply_early_exit(bare, s.exit_layer)
        apply_unmasking(bare, s.unmask)
        if s.lora is not None and apply_lora:
            model = s.lora.apply(model)
        elif s.freeze:
            model.requires_grad_(False)
        if s.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # A quantized model is placed on its GPU by bitsandbytes and cannot be moved.
        self.transformer = model if s.load_in_4bit else model.to(get_torch_default_device())
        modules = list(self.modules())
        plain = all(type(m).train is torch.nn.Module.train for m in modules if m is not self)
        self._mode_modules = modules if plain else None
        # A KV cache is useless for one full-sequence pass and costs memory.
        use_cache = getattr(without_adapters(model).config, "use_cache", None) is not None
        self._call_kwargs = {"use_cache": False} if use_cache else {}

    def train(self, mode: bool = True) -> "HFModel":
        """As torch's, but without its recursive walk when no module customises ``train``: thinc's
        shim switches modes around every forward call, and on a large model the walk cost more
        than the forward call of a short chunk."""
        if self._mode_modules is None:
            return super().train(mode)
        for module in self._mode_modules:
            module.__dict__["training"] = mode  # where nn.Module keeps it, without its __setattr__ checks
        return self

    # -- tensor math ---------------------------------------------------------------------------

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The last layer's output at each position, in float32: hidden states (``"base"``) or
        next-token logits (``"causal-lm"``), shape (batch, length, width); with ``positions``
        (indices into the flattened batch × length) only those rows, shape (len(positions), width)."""
        self.require_loaded()
        output = self.transformer(input_ids=input_ids, attention_mask=attention_mask, **self._call_kwargs)
        states = output.last_hidden_state if self.model_class == "base" else output.logits
        if positions is not None:
            states = states.reshape(-1, states.shape[-1]).index_select(0, positions)
        return states.float()  # a no-op for float32 weights; bf16 has no numpy dtype

    # -- serialization (see .artifact) ---------------------------------------------------------

    def to_bytes(self) -> bytes:
        from .artifact import model_to_bytes

        return model_to_bytes(self)

    def from_bytes(self, data: bytes) -> "HFModel":
        from .artifact import model_from_bytes

        model_from_bytes(self, data)
        return self


def hf_model_of(model: Model) -> HFModel:
    """The :class:`HFModel` inside a thinc model (a backbone, a causal LM, or a model built on one)."""
    found = find_hf_model(model)
    if found is not None:
        return found
    raise ValueError(
        f"The thinc model {model.name!r} holds no Hugging Face model: use spacy_seqlab.HFBackbone.v1 or "
        "spacy_seqlab.CausalLM.v1"
    )


def find_hf_model(model: Model) -> Optional[HFModel]:
    """The :class:`HFModel` inside a thinc model, or None."""
    for node in model.walk():
        for shim in node.shims:
            inner = getattr(shim, "_model", None)
            if isinstance(inner, HFModel):
                return inner
    return None


def four_bit_config() -> Any:
    """QLoRA's quantization (NF4, double quantization, bf16 compute); a clear error where it cannot run."""
    import importlib.util

    if not torch.cuda.is_available():
        raise ValueError("load_in_4bit needs a CUDA GPU (bitsandbytes 4-bit kernels); set load_in_4bit = false on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("load_in_4bit needs the bitsandbytes package: pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def special_tokens_around(tokenizer: Any) -> Tuple[List[int], List[int]]:
    """The special token ids the tokenizer puts before and after a text (BOS/CLS, EOS/SEP)."""
    probe = "a b"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return list(full[:i]), list(full[i + len(plain) :])
    raise ValueError(
        f"Cannot locate the text among the special tokens of {type(tokenizer).__name__}: {full} vs {plain}"
    )


# The transformer layer's shim saves and restores the model; a layer holding it in its attrs
# (the piece encoder) saves nothing for it and keeps its own on load.
serialize_attr.register(HFModel)(lambda _, value, name, model: srsly.msgpack_dumps(None))
deserialize_attr.register(HFModel)(lambda configured, value, name, model: configured)


def layer_settings(group: Type[T]) -> Type[T]:
    """Let a settings group live in a thinc layer's attrs: it is saved with the model (for the record)
    but restoring the model keeps the configured value, so a config override at load time holds.
    The fields a group names in ``checked_on_load`` change what the weights were trained for: a
    configured value other than the saved one is refused."""

    @serialize_attr.register(group)
    def _serialize(_: Any, value: Any, name: str, model: Model) -> bytes:
        return srsly.msgpack_dumps(to_config(value))

    @deserialize_attr.register(group)
    def _deserialize(configured: Any, value: bytes, name: str, model: Model) -> Any:
        saved = srsly.msgpack_loads(value)
        for field in getattr(group, "checked_on_load", ()) if isinstance(saved, dict) else ():
            was = saved.get(field, group.__dataclass_fields__[field].default)  # saved before the field existed
            if was != getattr(configured, field):
                raise ArtifactError(
                    f"The saved model was trained with {field} = {was!r} but the config says "
                    f"{getattr(configured, field)!r}; restore the config the pipeline was saved with"
                )
        return configured

    return group
