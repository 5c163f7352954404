"""Serving a trained ``seqlab_llm_sft`` model inside spacy-llm's ``llm`` component.

spacy-llm's own Hugging Face models accept only a fixed list of hub names, so local and
fine-tuned checkpoints cannot be used through them (explosion/spacy-llm#455, #452). These
two registered functions fill that gap with the pieces of a trained pipeline:

* ``spacy_seqlab.SiftModel.v1`` (``llm_models``): the component's causal LM (with its LoRA
  adapter), generating all prompts of a batch together;
* ``spacy_seqlab.SiftTask.v1`` (``llm_tasks``): the component's prompt builder,
  demonstrations and response parser, one prompt per window of each Doc.

```ini
[components.llm]
factory = "llm"

[components.llm.task]
@llm_tasks = "spacy_seqlab.SiftTask.v1"
pipeline = "training/sft/model-best"

[components.llm.model]
@llm_models = "spacy_seqlab.SiftModel.v1"
pipeline = "training/sft/model-best"
```
"""

from functools import lru_cache
from typing import Any, Dict, Iterable, List, Optional, Tuple

import spacy
from spacy.tokens import Doc
from spacy.training import Example
from spacy_llm.registry import registry

from ..hf.generation import generate
from .pipe import SiftLabeler


@lru_cache(maxsize=4)
def _load_component(pipeline: str, component: str) -> SiftLabeler:
    """The trained component, loaded once per process for the task and the model alike."""
    nlp = spacy.load(pipeline)
    if component not in nlp.pipe_names:
        raise ValueError(f"Pipeline {pipeline!r} has no component {component!r}; its components are {nlp.pipe_names}")
    pipe = nlp.get_pipe(component)
    if not isinstance(pipe, SiftLabeler):
        raise ValueError(
            f"Component {component!r} of {pipeline!r} is a {type(pipe).__name__}, not a seqlab_llm_sft component"
        )
    return pipe


class SiftModel:
    """A spacy-llm model: prompts → responses with the trained causal LM, batched."""

    def __init__(self, pipeline: str, component: str, max_new_tokens: Optional[int]) -> None:
        self.pipe = _load_component(pipeline, component)
        self.max_new_tokens = max_new_tokens or self.pipe.cfg["max_new_tokens"]

    @property
    def context_length(self) -> int:
        return int(self.pipe.cfg["max_prompt_tokens"])

    def __call__(self, prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:
        nested = [list(doc_prompts) for doc_prompts in prompts]
        flat = [prompt for doc_prompts in nested for prompt in doc_prompts]
        module = self.pipe.module
        responses = iter(
            generate(
                module.transformer,
                module.tokenizer,
                flat,
                max_new_tokens=self.max_new_tokens,
                max_batch_tokens=self.pipe.max_batch_tokens,
            )
        )
        return [[next(responses) for _ in doc_prompts] for doc_prompts in nested]


class SiftTask:
    """A spacy-llm task: the component's prompts in, its parser out."""

    def __init__(self, pipeline: str, component: str) -> None:
        self.pipe = _load_component(pipeline, component)

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.pipe.labels

    def generate_prompts(
        self, docs: Iterable[Doc], context_length: Optional[int] = None
    ) -> Iterable[Tuple[Iterable[str], Iterable[Doc]]]:
        prompter = self.pipe.prompter
        for doc in docs:
            prompts = prompter.generation_prompts(doc) if doc.text.strip() else []
            # Every window's prompt maps back to the whole Doc; its windows are found again when parsing.
            yield prompts, [doc] * max(len(prompts), 1)

    def parse_responses(self, shards: Iterable[Iterable[Doc]], responses: Iterable[Iterable[str]]) -> Iterable[Doc]:
        for doc_shards, doc_responses in zip(shards, responses):
            doc = list(doc_shards)[0]
            spans = self.pipe.read_responses(doc, list(doc_responses))
            self.pipe.set_annotations([doc], [spans])
            yield doc

    def scorer(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        return self.pipe.score(examples, **kwargs)


@registry.llm_models("spacy_seqlab.SiftModel.v1")
def make_sift_model(
    pipeline: str, component: str = "seqlab_llm_sft", max_new_tokens: Optional[int] = None
) -> SiftModel:
    """The causal LM of a trained ``seqlab_llm_sft`` component (path ``pipeline``), for spacy-llm."""
    return SiftModel(pipeline, component, max_new_tokens)


@registry.llm_tasks("spacy_seqlab.SiftTask.v1")
def make_sift_task(pipeline: str, component: str = "seqlab_llm_sft") -> SiftTask:
    """The prompts and parser of a trained ``seqlab_llm_sft`` component (path ``pipeline``), for spacy-llm."""
    return SiftTask(pipeline, component)


__all__: List[str] = ["SiftModel", "SiftTask", "make_sift_model", "make_sift_task"]
