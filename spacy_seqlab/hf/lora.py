"""LoRA settings for a backbone, validated from a config block and turned into a peft ``LoraConfig``."""

from dataclasses import dataclass, fields
from typing import Any, Dict, List, Optional, Union

import torch

from ..core.settings import check_int, check_number, nested_from_config, setting

# Attention projections to adapt when ``target_modules = "auto"``, by naming family.
_AUTO_TARGETS = (
    ("q_proj", "v_proj"),  # Llama, Mistral, Qwen2/3, Gemma, OPT
    ("query", "value"),  # BERT, RoBERTa, MiniLM
    ("c_attn",),  # GPT-2
    ("query_key_value",),  # Falcon, BLOOM, GPT-NeoX
)


@dataclass
class LoraSettings:
    """Low-rank adaptation of a backbone's linear layers (peft LoRA); the base stays frozen."""

    r: int = setting(8, "Rank of the update matrices; 8-64 is typical.")
    alpha: float = setting(16.0, "Scaling numerator: updates are scaled by alpha / r.")
    dropout: float = setting(0.05, "Dropout on the LoRA branch's input, 0 <= dropout < 1.")
    target_modules: Union[str, List[str]] = setting(
        "auto",
        "Names (suffixes) of the modules to adapt, 'all-linear', or 'auto' for the attention query and value "
        "projections of the architecture (q_proj/v_proj, query/value, c_attn).",
    )
    bias: str = setting("none", "Which biases to train: 'none', 'all' or 'lora_only'.")

    def __post_init__(self) -> None:
        check_int("lora.r", self.r)
        check_number("lora.alpha", self.alpha, low=0, low_open=True)
        check_number("lora.dropout", self.dropout, low=0, high=1)
        if self.bias not in ("none", "all", "lora_only"):
            raise ValueError(f"lora.bias must be 'none', 'all' or 'lora_only', got {self.bias!r}")
        if isinstance(self.target_modules, str):
            if self.target_modules not in ("auto", "all-linear"):
                raise ValueError(
                    "lora.target_modules must be a list of module names, 'auto' or 'all-linear', "
                    f"got {self.target_modules!r}"
                )
        elif not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise ValueError(
                f"lora.target_modules must be a non-empty list of module names, got {self.target_modules!r}"
            )

    @classmethod
    def from_config(cls, value: Optional[Union["LoraSettings", Dict[str, Any]]]) -> Optional["LoraSettings"]:
        """Build from a config table (``lora = {"r": 16, ...}``); ``None`` or ``{}`` means no LoRA."""
        return nested_from_config(cls, value, "lora")

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def resolve_targets(self, model: torch.nn.Module) -> Union[str, List[str]]:
        """The module names to adapt in ``model``; a clear error when none matches."""
        names = {
            name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
        }
        names |= {
            name.rsplit(".", 1)[-1] for name, module in model.named_modules() if type(module).__name__ == "Conv1D"
        }
        if self.target_modules == "all-linear":
            return "all-linear"
        if self.target_modules == "auto":
            for family in _AUTO_TARGETS:
                if all(n in names for n in family):
                    return list(family)
            raise ValueError(
                f"lora.target_modules='auto' found no known attention projections in {type(model).__name__}; "
                f"name them explicitly, e.g. one of {sorted(names)[:12]}"
            )
        missing = [m for m in self.target_modules if m not in names]
        if missing:
            raise ValueError(
                f"lora.target_modules {missing} not found in {type(model).__name__}; linear layers are {sorted(names)}"
            )
        return list(self.target_modules)

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        """Wrap ``model`` with LoRA adapters (peft); only the adapters are trainable, in float32."""
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.resolve_targets(model),
            bias=self.bias,
        )
        peft_model = get_peft_model(model, config, autocast_adapter_dtype=True)
        for param in peft_model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()  # thinc's optimizer updates params through numpy
        return peft_model


def without_adapters(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a peft wrapper (the model itself when it has no LoRA)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if get_base is not None else model
