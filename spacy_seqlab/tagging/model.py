"""``spacy_seqlab.Tagger.v1``: token classification on a backbone, with optional auxiliary signals.

The backbone (Docs → one vector per token) feeds a softmax over the target's tags. Auxiliary
signals (:mod:`.signals`; Dukić et al., arXiv 2305.14163) are read from upstream annotations,
each in one of two modes or both:

* ``embed`` (implicit multi-task): a learned embedding of the signal's value, concatenated with
  the backbone output before the tag softmax; own learning-rate factor; needed at inference.
* ``head`` (explicit multi-task): an auxiliary softmax over the signal's values on the backbone
  output, trained with its own loss; needed in training only.

The tag softmax's bias starts at the log prior of the gold tags given to initialize as ``Y``
(``head_init = "prior"``). From a uniform start the bias barely moves in a short budget (by 0.05
in the main job's 120 steps), so the weights and the backbone had to learn first that nearly every
token is ``O``: the taggers learned far slower than spaCy's ``ner`` (issue #14, item 4).

The output is a :class:`TaggerOutput`: the tag probabilities, and each head's probabilities by
signal name, and with ``decoder = "crf"`` the CRF's transition scores (:mod:`.crf`). Each
signal's value vocabulary is learned by the model's initialize from the
sample Docs it is given (annotated by the upstream pipes), and saved with the weights.
Layers are reached by name: ``backbone``, ``dropout``, ``output_layer``, ``embed:NAME``,
``head:NAME``, ``head_dropout:NAME``, and ``crf`` with ``decoder = "crf"``.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Embed, Model, Softmax_v2
from thinc.types import Floats2d

from ..core.pipe import split_rows
from ..core.settings import check_choice, check_int, check_number, registered_with, setting
from ..core.types import DocFeaturesModel
from .crf import Transitions, crf_transitions
from .decoding import DECODERS
from .signals import SignalSettings, SignalVocab, learn_values, signal_ids

DECODER_ATTR = "decoder"  # the decoder setting, read by the pipe
HEAD_INITS = ("prior", "zero")
HEAD_INIT_ATTR = "head_init"
SIGNALS_ATTR = "signals"  # {name: SignalSettings as a dict}, from the config
VALUES_ATTR = "signal_values"  # {name: the values seen at initialize}, saved with the weights
# The backbone's initialize needs only a few Docs (to size itself); the signals' values are learned from all.
BACKBONE_SAMPLE = 10


@dataclass
class TaggerOutput:
    """Per Doc, one row per token: ``tags``, the probabilities of the tags; ``auxiliary``, the
    probabilities of each head signal's values, by signal name; ``transitions``, the CRF's scores
    (``decoder = "crf"`` only). Gradients have the same form."""

    tags: List[Floats2d]
    auxiliary: Dict[str, List[Floats2d]] = field(default_factory=dict)
    transitions: Optional[Transitions] = None


TaggerModel = Model[List[Doc], TaggerOutput]


@dataclass
class TaggerSettings:
    """The softmax heads of ``spacy_seqlab.Tagger.v1`` and its auxiliary signals."""

    dropout: float = setting(0.1, "Dropout on the features before each softmax, 0 <= dropout < 1.")
    head_learn_rate_factor: float = setting(
        10.0,
        "The softmax heads' weights start at zero and learn at this many times the learning rate (with a pre-trained "
        "backbone and a short budget they would otherwise barely move).",
    )
    decoder: str = setting(
        "viterbi",
        "How tags are chosen: 'viterbi', the most probable sequence the label scheme allows; 'crf', a CRF head "
        "with learned transition scores, trained with its own loss and decoded by Viterbi; 'argmax', each "
        "token's best tag, an ill-formed sequence read with repair. For plain tags (POS) viterbi is argmax.",
    )
    head_init: str = setting(
        "prior",
        "How the tag softmax starts: 'prior' (weights at zero, bias at the log frequency of each tag in the gold "
        "tags given to initialize, so that no step is spent learning that most tokens are O) or 'zero'.",
    )
    nO: Optional[int] = setting(None, "Number of tags; leave it null: it is set from the labels at initialize.")
    signals: Dict[str, Dict[str, Any]] = setting(
        help="Auxiliary signals by name, each a table of SignalSettings (source, mode, width, learn_rate_factor, "
        "loss_weight); none by default. Once validated, each is held as its SignalSettings.",
        factory=dict,
    )

    def __post_init__(self) -> None:
        check_number("dropout", self.dropout, low=0, high=1)
        check_number("head_learn_rate_factor", self.head_learn_rate_factor, low=0, low_open=True)
        check_choice("decoder", self.decoder, DECODERS)
        check_choice("head_init", self.head_init, HEAD_INITS)
        if self.nO is not None:
            check_int("nO", self.nO)
        if not isinstance(self.signals, dict):
            raise ValueError(f"signals must be a table of signals by name, got {self.signals!r}")
        self.signals = {name: SignalSettings.from_config(name, value) for name, value in self.signals.items()}


def head_layer(nO: Optional[int], learn_rate_factor: float) -> Model:
    """A softmax layer starting at zero (weights and bias) that learns at ``learn_rate_factor`` times the rate."""
    layer = Softmax_v2(nO=nO)
    layer.attrs["lr_scale"] = float(learn_rate_factor)
    return layer


@registry.architectures("spacy_seqlab.Tagger.v1")
@registered_with(TaggerSettings)
def build_tagger(backbone: DocFeaturesModel, settings: TaggerSettings) -> TaggerModel:
    """Backbone → [⊕ signal embeddings] → dropout → softmax over the tags, plus a softmax per head signal.

    ``nO`` and the signals' vocabularies are set at initialize.
    """
    refs: Dict[str, Model] = {
        "backbone": backbone,
        "dropout": Dropout(settings.dropout),
        "output_layer": head_layer(settings.nO, settings.head_learn_rate_factor),
    }
    if settings.decoder == "crf":
        # Transitions start at zero too, and learn at the heads' rate.
        refs["crf"] = crf_transitions(settings.nO)
        refs["crf"].attrs["lr_scale"] = float(settings.head_learn_rate_factor)
    for name, signal in settings.signals.items():
        if signal.embeds:
            embed = Embed(nO=signal.width)
            embed.attrs["lr_scale"] = float(signal.learn_rate_factor)
            refs[f"embed:{name}"] = embed
        if signal.has_head:
            refs[f"head_dropout:{name}"] = Dropout(settings.dropout)
            refs[f"head:{name}"] = head_layer(None, settings.head_learn_rate_factor)
    signals = {name: signal.to_dict() for name, signal in settings.signals.items()}
    return Model(
        "seqlab_tagger",
        _forward,
        init=_init,
        layers=list(refs.values()),
        refs=refs,
        attrs={
            DECODER_ATTR: settings.decoder,
            SIGNALS_ATTR: signals,
            VALUES_ATTR: {},
            HEAD_INIT_ATTR: settings.head_init,
        },
    )


def tagger_signals(model: Model) -> Dict[str, SignalSettings]:
    """The model's auxiliary signals, by name."""
    return {name: SignalSettings(**cfg) for name, cfg in model.attrs[SIGNALS_ATTR].items()}


def signal_vocabs(model: Model) -> Dict[str, SignalVocab]:
    """The value vocabulary of each signal (learned at initialize, restored with the weights)."""
    values = model.attrs.get(VALUES_ATTR) or {}
    return {name: SignalVocab(values[name]) for name in model.attrs[SIGNALS_ATTR] if name in values}


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Optional[List[Any]] = None) -> None:
    """Sizes and vocabularies from the Docs ``X``; ``Y``, gold tag ids per Doc (-1: none), for ``head_init``."""
    backbone = model.get_ref("backbone")
    backbone.initialize(X=list(X)[:BACKBONE_SAMPLE] if X is not None else None)
    width = backbone.get_dim("nO")
    signals = tagger_signals(model)
    if signals and X is None:
        raise ValueError(
            "spacy_seqlab.Tagger.v1 learns its signals' values from sample Docs: initialize it with X, "
            "Docs annotated by the upstream pipes (the pipe's initialize does this)"
        )
    model.attrs[VALUES_ATTR] = {name: learn_values(X, signal.source) for name, signal in signals.items()}
    vocabs = signal_vocabs(model)
    n_input = width
    for name, signal in signals.items():
        if signal.embeds:
            embed = model.get_ref(f"embed:{name}")
            embed.set_dim("nV", len(vocabs[name]))
            embed.initialize()
            n_input += signal.width
        if signal.has_head:
            head = model.get_ref(f"head:{name}")
            head.set_dim("nI", width)
            head.set_dim("nO", len(vocabs[name]))
            head.initialize()
    output_layer = model.get_ref("output_layer")
    output_layer.set_dim("nI", n_input)
    output_layer.initialize()
    if model.has_ref("crf"):
        crf = model.get_ref("crf")
        crf.set_dim("nO", output_layer.get_dim("nO"), force=True)
        crf.initialize()
    if Y is not None and model.attrs.get(HEAD_INIT_ATTR, "zero") == "prior":
        output_layer.set_param("b", model.ops.asarray1f(log_prior(Y, output_layer.get_dim("nO"))))


def log_prior(gold: Any, n_tags: int) -> numpy.ndarray:
    """Log frequency of each tag among gold tag ids (-1: no gold), add-one smoothed."""
    ids = numpy.concatenate([numpy.asarray(g, dtype=numpy.int64).reshape(-1) for g in gold] or [numpy.zeros(0, int)])
    counts = numpy.bincount(ids[ids >= 0], minlength=n_tags)[:n_tags].astype("float64") + 1.0
    return numpy.log(counts / counts.sum()).astype("float32")


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[TaggerOutput, Callable]:
    ops = model.ops
    backbone, output_layer = model.get_ref("backbone"), model.get_ref("output_layer")
    signals, vocabs = tagger_signals(model), signal_vocabs(model)

    def concat(rows: List[Floats2d], width: int) -> Floats2d:
        return ops.xp.concatenate(rows) if rows else ops.alloc2f(0, width)

    per_doc, backprop_backbone = backbone(docs, is_train)
    lengths = [len(h) for h in per_doc]
    width = backbone.get_dim("nO")
    hidden = concat(per_doc, width)
    features, embed_backprops = [hidden], []
    for name, signal in signals.items():
        if signal.embeds:
            ids = ops.asarray1i(signal_ids(docs, signal.source, vocabs[name]))
            vectors, backprop_embed = model.get_ref(f"embed:{name}")(ids, is_train)
            features.append(vectors)
            embed_backprops.append((signal.width, backprop_embed))
    joined = ops.xp.hstack(features) if len(features) > 1 else hidden
    dropped, backprop_dropout = model.get_ref("dropout")(joined, is_train)
    tags, backprop_tags = output_layer(dropped, is_train)
    auxiliary, head_backprops = {}, {}
    for name, signal in signals.items():
        if signal.has_head:
            head_input, backprop_head_dropout = model.get_ref(f"head_dropout:{name}")(hidden, is_train)
            probs, backprop_head = model.get_ref(f"head:{name}")(head_input, is_train)
            auxiliary[name] = split_rows(probs, lengths)
            head_backprops[name] = (probs.shape[1], backprop_head, backprop_head_dropout)
    transitions, backprop_transitions = model.get_ref("crf")(None, is_train) if model.has_ref("crf") else (None, None)

    def backprop(d_output: TaggerOutput) -> Any:
        d_joined = backprop_dropout(backprop_tags(concat(d_output.tags, tags.shape[1])))
        d_hidden = ops.xp.ascontiguousarray(d_joined[:, :width]) if embed_backprops else d_joined
        offset = width
        for embed_width, backprop_embed in embed_backprops:
            backprop_embed(ops.xp.ascontiguousarray(d_joined[:, offset : offset + embed_width]))
            offset += embed_width
        for name, (n_values, backprop_head, backprop_head_dropout) in head_backprops.items():
            if name in d_output.auxiliary:
                d_hidden += backprop_head_dropout(backprop_head(concat(d_output.auxiliary[name], n_values)))
        if backprop_transitions is not None and d_output.transitions is not None:
            backprop_transitions(d_output.transitions)
        return backprop_backbone(split_rows(d_hidden, lengths))

    return TaggerOutput(split_rows(tags, lengths), auxiliary, transitions), backprop
