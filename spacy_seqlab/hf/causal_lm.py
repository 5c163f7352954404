"""``spacy_seqlab.CausalLM.v1``: a Hugging Face causal LM (with its LM head) for generative components.

Built on the same :class:`~.model.HFModel` as the backbone (loading, GGUF, dtype, 4-bit, LoRA,
save and restore), with only the settings generation uses: no causal-mask removal, early exit,
pooling or windows. As a thinc layer it maps ``(input_ids, attention_mask[, positions])`` to float32
next-token logits; components generate with :func:`.generation.generate` on
:func:`causal_lm_of`'s model and tokenizer, in chunks of :attr:`CausalLMSettings.max_batch_tokens`.
"""

from dataclasses import dataclass
from typing import Any, Callable, Tuple

from spacy.util import registry
from thinc.api import Model

from ..core.settings import check_int, registered_with, setting
from .model import HFModel, ModelSettings, hf_model_of, layer_settings
from .transformer import build_transformer

MODEL_CLASS = "causal-lm"


@layer_settings
@dataclass
class CausalLMSettings:
    """How a causal LM is batched."""

    max_batch_tokens: int = setting(4096, "Padded tokens (prompt and generated) per forward call when generating.")

    def __post_init__(self) -> None:
        check_int("max_batch_tokens", self.max_batch_tokens)


@registry.architectures("spacy_seqlab.CausalLM.v1")
@registered_with(ModelSettings, CausalLMSettings, omit=("unmask", "freeze", "exit_layer"))
def build_causal_lm(model: ModelSettings, batching: CausalLMSettings) -> Model:
    """A causal LM with its LM head, usually with LoRA; weights load at initialize."""
    transformer = build_transformer(HFModel(model, MODEL_CLASS))
    return Model("hf_causal_lm", _forward, init=_init, layers=[transformer], attrs={"settings": batching})


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    model.layers[0].initialize()


def _forward(model: Model, X: Tuple[Any, ...], is_train: bool) -> Tuple[Any, Callable]:
    return model.layers[0](X, is_train)


def causal_lm_of(model: Model) -> HFModel:
    """The causal LM inside ``model``; a clear error when it is another kind of model."""
    hf_model = hf_model_of(model)
    if hf_model.model_class != MODEL_CLASS:
        raise ValueError(
            "this component generates text and needs a causal LM with its LM head: use "
            '@architectures = "spacy_seqlab.CausalLM.v1" for its model'
        )
    return hf_model


def causal_lm_settings(model: Model) -> CausalLMSettings:
    """The batching settings of a ``spacy_seqlab.CausalLM.v1`` model."""
    for node in model.walk():
        if isinstance(node.attrs.get("settings"), CausalLMSettings):
            return node.attrs["settings"]
    raise ValueError(f"The thinc model {model.name!r} is not a spacy_seqlab.CausalLM.v1 model")
