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

import hashlib
import json
import warnings
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import spacy
import srsly
from spacy import util
from spacy.tokens import Doc
from spacy.training import Example
from spacy_llm.registry import registry

from ..core.serialization import CHECKSUMS_FILE
from ..hf.generation import generate
from .pipe import SiftLabeler
from .prompt import build_prompt

TASK_NAME = "spacy_seqlab.SiftTask.v1"
TASK_CFG = "cfg.json"  # what the llm component saves of the task


def component_fingerprint(directory: Path) -> str:
    """SHA-256 over the files of a saved component (weights, settings, demonstrations): it changes
    whenever the component is trained or configured again. Reads ``checksums.json`` when the
    component has one (loading verified it), else hashes the files."""
    directory = Path(directory)
    digest = hashlib.sha256()
    if (directory / CHECKSUMS_FILE).is_file():
        digest.update((directory / CHECKSUMS_FILE).read_bytes())
        return digest.hexdigest()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode("utf8") + b"\0")
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _load_component(pipeline: str, component: str) -> Tuple[SiftLabeler, str]:
    """The trained component and its fingerprint. A pipeline folder saved again (retrained) is
    loaded again, not served from the process's cache of loaded components."""
    folder = Path(pipeline) / component
    return _load_cached(pipeline, component, component_fingerprint(folder) if folder.is_dir() else "")


@lru_cache(maxsize=4)
def _load_cached(pipeline: str, component: str, fingerprint: str) -> Tuple[SiftLabeler, str]:
    """Loaded once per process and fingerprint, for the task and the model alike."""
    nlp = spacy.load(pipeline)
    if component not in nlp.pipe_names:
        raise ValueError(f"Pipeline {pipeline!r} has no component {component!r}; its components are {nlp.pipe_names}")
    pipe = nlp.get_pipe(component)
    if not isinstance(pipe, SiftLabeler):
        raise ValueError(
            f"Component {component!r} of {pipeline!r} is a {type(pipe).__name__}, not a seqlab_llm_sft component"
        )
    if not fingerprint:  # an installed package: its folder is known once loaded
        fingerprint = (
            component_fingerprint(Path(nlp.path) / component)
            if nlp.path is not None
            else hashlib.sha256(pipe.to_bytes()).hexdigest()
        )
    return pipe, fingerprint


class SiftModel:
    """A spacy-llm model: prompts → responses with the trained causal LM, batched."""

    def __init__(self, pipeline: str, component: str, max_new_tokens: Optional[int]) -> None:
        self.pipe, _ = _load_component(pipeline, component)
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
    """A spacy-llm task: the component's prompts in, its parser out.

    Its :attr:`prompt_template` names the trained component's fingerprint, so spacy-llm's cache
    refuses a cache folder filled by another training of the pipeline instead of serving its
    answers. Labels are the trained component's: they cannot be added or cleared here.
    """

    _cfg_keys = ("pipeline", "component", "fingerprint")

    def __init__(self, pipeline: str, component: str) -> None:
        self.pipeline = pipeline
        self.component = component
        self.pipe, self.fingerprint = _load_component(pipeline, component)

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.pipe.labels)

    def add_label(self, label: str, label_definition: Optional[str] = None) -> int:
        if label in self.pipe.labels:
            return 0
        raise ValueError(
            f"{TASK_NAME} labels with the trained component {self.component!r} of {self.pipeline!r}, whose labels "
            f"are {list(self.pipe.labels)}; to add {label!r}, train the component with it"
        )

    def clear(self) -> None:
        raise ValueError(f"{TASK_NAME} cannot clear the labels of a trained component; train another one")

    @property
    def prompt_template(self) -> str:
        """What every prompt is built from: the trained component (by fingerprint), its settings,
        and the prompt's layout around a query (demonstrations are chosen per query)."""
        pipe = self.pipe
        prompter = pipe.prompter
        layout = build_prompt("{text}", [], instruction=prompter.instruction, eos=prompter.tokenizer.eos_token)
        settings = json.dumps(asdict(pipe.settings), sort_keys=True)
        return (
            f"{TASK_NAME} over component {self.component!r} with fingerprint sha256:{self.fingerprint}\n"
            f"labels: {json.dumps(list(pipe.labels))}\nsettings: {settings}\n"
            f"demonstrations: {len(pipe.pool)}\nprompt:\n{layout.generation_prefix}"
        )

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

    # -- serialization with the llm component: which training of the pipeline it was saved with --

    def get_cfg(self) -> Dict[str, Any]:
        return {key: getattr(self, key) for key in self._cfg_keys}

    def _check_saved(self, cfg: Dict[str, Any]) -> None:
        if cfg.get("fingerprint") != self.fingerprint:
            warnings.warn(
                f"The llm component was saved with another training of {self.component!r} in {self.pipeline!r} "
                f"(fingerprint {str(cfg.get('fingerprint'))[:12]}…, now {self.fingerprint[:12]}…): its labels and "
                "answers may differ from the ones saved with it",
                stacklevel=2,
            )

    def to_bytes(self, *, exclude: Tuple[str, ...] = tuple()) -> bytes:
        return srsly.json_dumps(self.get_cfg()).encode("utf8")

    def from_bytes(self, bytes_data: bytes, *, exclude: Tuple[str, ...] = tuple()) -> "SiftTask":
        self._check_saved(srsly.json_loads(bytes_data))
        return self

    def to_disk(self, path: Path, *, exclude: Tuple[str, ...] = tuple()) -> None:
        path = util.ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / TASK_CFG, self.get_cfg())

    def from_disk(self, path: Path, *, exclude: Tuple[str, ...] = tuple()) -> "SiftTask":
        file = util.ensure_path(path) / TASK_CFG
        if file.is_file():
            self._check_saved(srsly.read_json(file))
        return self


@registry.llm_models("spacy_seqlab.SiftModel.v1")
def make_sift_model(
    pipeline: str, component: str = "seqlab_llm_sft", max_new_tokens: Optional[int] = None
) -> SiftModel:
    """The causal LM of a trained ``seqlab_llm_sft`` component (path ``pipeline``), for spacy-llm."""
    return SiftModel(pipeline, component, max_new_tokens)


@registry.llm_tasks(TASK_NAME)
def make_sift_task(pipeline: str, component: str = "seqlab_llm_sft") -> SiftTask:
    """The prompts and parser of a trained ``seqlab_llm_sft`` component (path ``pipeline``), for spacy-llm."""
    return SiftTask(pipeline, component)


__all__: List[str] = ["SiftModel", "SiftTask", "make_sift_model", "make_sift_task"]
