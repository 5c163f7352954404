"""The transformer as a thinc layer: ``PyTorchWrapper_v3`` around an :class:`~.model.HFModel`.

Input: ``(input_ids, attention_mask)`` or ``(input_ids, attention_mask, positions)``, numpy (or
cupy) integer arrays, padded once by the caller; output: the model's float32 vectors at every
position (batch, length, width), or only at ``positions`` (rows of the flattened batch × length),
which spares moving padding and special tokens off the device. ``initialize`` loads the
pre-trained weights; (de)serialization is the model's own (:mod:`.artifact`).
"""

from typing import Any, Callable, Tuple

import torch
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v3, get_torch_default_device, torch2xp, xp2torch
from thinc.types import ArrayXd

from .model import HFModel, hf_model_of


def build_transformer(hf_model: HFModel) -> Model:
    """A thinc layer running ``hf_model`` (see the module docstring)."""
    layer = PyTorchWrapper_v3(
        hf_model,
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        serialize_model=_serialize,
        deserialize_model=_deserialize,
    )
    layer.name = "hf_transformer"
    layer.init = _init
    return layer


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    hf_model_of(model).load_pretrained()


def _serialize(hf_model: HFModel) -> bytes:
    return hf_model.to_bytes()


def _deserialize(hf_model: HFModel, data: bytes, device: torch.device) -> HFModel:
    return hf_model.from_bytes(data)


def _convert_inputs(model: Model, X: Tuple[ArrayXd, ...], is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    device = get_torch_default_device()
    names = ("input_ids", "attention_mask", "positions")
    kwargs = {name: xp2torch(model.ops.xp.ascontiguousarray(array), device=device) for name, array in zip(names, X)}
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: X  # integer inputs take no gradient


def _convert_outputs(model: Model, inputs_output: Tuple[Any, torch.Tensor], is_train: bool) -> Tuple[ArrayXd, Callable]:
    _, output = inputs_output
    vectors = torch2xp(output, ops=model.ops)

    def get_d_output(d_vectors: ArrayXd) -> ArgsKwargs:
        if not output.requires_grad:  # frozen weights (freeze = true): nothing to backpropagate into
            return ArgsKwargs(args=((),), kwargs={"grad_tensors": ()})
        return ArgsKwargs(args=(output,), kwargs={"grad_tensors": (xp2torch(d_vectors, device=output.device),)})

    return vectors, get_d_output
