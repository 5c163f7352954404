"""``spacy_seqlab.HFBackbone.v1``: any Hugging Face encoder or decoder as Docs → one vector per token.

A chain of small thinc layers, each usable and testable alone:

1. :mod:`.pieces`: Docs → their sub-word pieces aligned to the tokens (a :class:`~.pieces.PieceBatch`);
2. :mod:`.windows`: pieces → overlapping windows, sorted, padded once per chunk, run through
3. :mod:`.transformer`: the :class:`~.model.HFModel` in a ``PyTorchWrapper_v3`` (tensor math only),
   giving one vector per piece;
4. :mod:`.pooling`: piece vectors → one float32 row per spaCy token (``first``, ``last`` or ``mean``).

Each layer is also a ref of the backbone (``pieces``, ``windows``, ``transformer``, ``pooling``).
The layer is built empty; weights are loaded in ``initialize``, or restored by
``from_bytes``/``from_disk`` without any network. Its settings are the fields of
:class:`~.model.ModelSettings`, :class:`~.windows.WindowSettings` and :class:`~.pooling.PoolingSettings`.
"""

from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..core.settings import registered_with
from ..core.types import DocFeaturesModel
from .model import HFModel, ModelSettings
from .pieces import build_piece_encoder
from .pooling import PoolingSettings, build_pooling
from .transformer import build_transformer
from .windows import WindowSettings, with_windows


@registry.architectures("spacy_seqlab.HFBackbone.v1")
@registered_with(ModelSettings, WindowSettings, PoolingSettings)
def build_hf_backbone(model: ModelSettings, windows: WindowSettings, pooling: PoolingSettings) -> DocFeaturesModel:
    """A Hugging Face transformer as Docs → one vector per token; weights load at initialize."""
    hf_model = HFModel(model, "base")
    transformer = build_transformer(hf_model)
    layers = [build_piece_encoder(hf_model), with_windows(transformer, windows), build_pooling(pooling)]
    refs = {"pieces": layers[0], "windows": layers[1], "transformer": transformer, "pooling": layers[2]}
    backbone: DocFeaturesModel = Model("hf_backbone", _forward, init=_init, layers=layers, dims={"nO": None}, refs=refs)
    return backbone


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    windows = model.layers[1]
    windows.initialize()  # and the transformer inside it: loads the weights
    model.set_dim("nO", windows.get_dim("nO"))


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    encode, windows, pool = model.layers
    pieces, _ = encode(docs, is_train)
    vectors, backprop_windows = windows(pieces, is_train)
    tokens, backprop_pool = pool(vectors, is_train)

    def backprop(d_tokens: List[Floats2d]) -> List[Doc]:
        backprop_windows(backprop_pool(d_tokens))
        return []

    return tokens, backprop
