"""Saving and restoring an :class:`~.model.HFModel`: safetensors weights and msgpack, never pickle.

A model is saved whole (its weights exist nowhere else: fine-tuned, or small enough) or as its
LoRA adapter only, with the base recorded by name (``save_base``). Restoring checks that the
settings the weights were trained with are the configured ones, and that an adapter-only
artifact's base model is still loadable and has the shape it was trained on.
"""

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

import torch

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
from .early_exit import apply_early_exit
from .loading import load_tokenizer, model_from_config, resolve_source

if TYPE_CHECKING:
    from .model import HFModel

KIND = "hf-backbone"
# Bases up to this size are saved whole by default (a self-contained pipeline); larger
# LoRA-adapted bases are saved as adapter only, with the base recorded by name.
SAVE_BASE_MAX_PARAMS = 1_000_000_000
# The settings that change what the saved weights are; the others may differ on load.
_CHECKED = ("lora", "unmask", "exit_layer")
# Config entries that must agree between an adapter's base at training time and now.
_BASE_SHAPE = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "n_embd", "n_layer")


def saves_base(model: "HFModel") -> bool:
    """Whether the base weights go into the artifact (see ``ModelSettings.save_base``)."""
    s = model.settings
    if s.lora is None and not s.freeze:
        return True  # fine-tuned weights exist nowhere else
    if s.load_in_4bit:
        return False
    if s.save_base is not None:
        return s.save_base
    return sum(p.numel() for p in model.base_model.parameters()) <= SAVE_BASE_MAX_PARAMS


def model_to_bytes(model: "HFModel") -> bytes:
    if model.transformer is None:
        return pack(KIND, {"empty": True})
    from peft import get_peft_model_state_dict

    with tempfile.TemporaryDirectory() as tmp:
        model.tokenizer.save_pretrained(tmp)
        tokenizer_files = directory_to_files(Path(tmp))
    full = saves_base(model)
    state = model.transformer.state_dict() if full else get_peft_model_state_dict(model.transformer)
    return pack(
        KIND,
        {
            "empty": False,
            "settings": model.settings.to_dict(),
            "model_class": model.model_class,
            "config": model.base_model.config.to_dict(),
            "tokenizer": tokenizer_files,
            "weights": state_to_bytes(state),
            "weights_kind": "full" if full else "adapter",
        },
    )


def model_from_bytes(model: "HFModel", data: bytes) -> None:
    """Restore ``model`` (built from the config) from :func:`model_to_bytes`' output."""
    msg = unpack(KIND, data)
    if msg["empty"]:
        return
    s = model.settings
    saved = type(s).from_dict(msg["settings"])
    saved_class = msg.get("model_class", msg["settings"].get("model_class", "base"))
    if saved_class != model.model_class:
        raise ArtifactError(
            f"The saved model was trained with model_class = {saved_class!r} but this architecture builds "
            f"{model.model_class!r}; restore the config the pipeline was saved with"
        )
    for name in _CHECKED:
        if getattr(saved, name) != getattr(s, name):
            raise ArtifactError(
                f"The saved backbone was trained with {name} = {getattr(saved, name)!r} but the config says "
                f"{getattr(s, name)!r}; restore the config the pipeline was saved with"
            )
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = load_tokenizer(str(files_to_directory(msg["tokenizer"], Path(tmp))))
    state = state_from_bytes(msg["weights"])
    if msg["weights_kind"] == "full":
        transformer = model_from_config(
            msg["config"], kind=model.model_class, dtype=s.dtype, attn_implementation=s.attn_implementation
        )
        # The saved weights are those of the layers that ran: drop the others before loading them.
        apply_early_exit(getattr(transformer, transformer.base_model_prefix, transformer), s.exit_layer)
        if s.lora is not None:
            transformer = s.lora.apply(transformer)
        try:
            transformer.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ArtifactError(f"Saved backbone weights do not fit the model built from its config: {err}") from err
        model.install(tokenizer, transformer, apply_lora=False)
        return
    model.install(tokenizer, _saved_base(model, msg["config"]), apply_lora=True)
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model.transformer, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ArtifactError(f"The saved adapter does not fit this base model: unexpected weights {unexpected[:5]}")


def _saved_base(model: "HFModel", saved_config: Dict[str, Any]) -> torch.nn.Module:
    """The base model an adapter-only artifact was trained on, checked against its saved config."""
    s = model.settings
    try:
        base = model.load_base(resolve_source(s.name, s.gguf_file))
    except Exception as err:
        raise BaseModelUnavailableError(
            f"This pipeline stores only a LoRA adapter; its base model {s.name!r} (revision {s.revision}) could not "
            f"be loaded: {err}. Make the base model available at that name/path again, or point the model's "
            f"name setting at where it is now when loading (a config override); a pipeline saved with save_base = true "
            f"carries its base and does not depend on it"
        ) from err
    found = base.config.to_dict()
    for key in _BASE_SHAPE:
        if saved_config.get(key) != found.get(key):
            raise ArtifactError(
                f"The saved adapter was trained on a different base model than {s.name!r}: {key} is "
                f"{saved_config.get(key)!r} in the artifact but {found.get(key)!r} in the base"
            )
    return base
