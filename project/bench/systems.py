"""Systems that several comparisons time: the raw forward pass of a backbone (the limit) and ``nlp.pipe``."""

from typing import Any, Dict, List, Optional, Sequence

from corpus import Corpus, batches, make_docs, train_examples
from measure import System
from seqlab_access import add_tagger


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(path: str, cls: Any = None):
    """The model alone (``AutoModel`` unless ``cls`` says otherwise), float32, in eval mode, and the keyword
    arguments of an inference forward pass (no KV cache for the models that keep one)."""
    import torch
    from transformers import AutoModel

    model = (cls or AutoModel).from_pretrained(path, torch_dtype=torch.float32).eval()
    forward_kwargs = {"use_cache": False} if getattr(model.config, "use_cache", None) is not None else {}
    return model, forward_kwargs


def forward(
    model, tokenizer, text_batches: Sequence[Sequence[str]], forward_kwargs: Dict[str, Any], max_length: int = 512
) -> None:
    """Tokenize each batch, pad it to its longest text, one forward pass each (inference mode)."""
    import torch

    with torch.inference_mode():
        for texts in text_batches:
            enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **forward_kwargs)


def length_sorted(tokenizer, texts: Sequence[str], max_length: int = 512) -> List[str]:
    """``texts`` from the most pieces to the fewest (stable), as the components order their windows."""
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    return [texts[i] for i in order]


def raw_forward_system(
    name: str, label: str, model_dir: str, corpus: Corpus, batch_size: int, group: str, max_length: int = 512
) -> System:
    """The limit: the backbone alone over the same texts in length-sorted batches of the same size.

    The texts are sorted by piece count once, untimed, then cut into batches; a timed pass tokenizes each
    batch, pads it and runs one forward pass (inference mode, no KV cache). Sorting keeps padding to a
    minimum, as the components do with their windows: the fastest the backbone itself goes over these texts
    at this batch size."""
    tokenizer = load_tokenizer(model_dir)
    model, forward_kwargs = load_backbone(model_dir)
    sorted_batches = batches(length_sorted(tokenizer, corpus.texts, max_length), batch_size)

    def run(_: Any) -> None:
        forward(model, tokenizer, sorted_batches, forward_kwargs, max_length)

    return System(
        name,
        label,
        run,
        corpus.n_words,
        group=group,
        extra={"batch_size": batch_size, "docs": len(corpus.texts), "batching": "length-sorted"},
    )


def seqlab_nlp(factory: str, backbone: Dict[str, Any], corpus: Corpus, model: Optional[Dict[str, Any]] = None):
    """A blank pipeline with one tagger factory, initialized (not trained) on the corpus' train docs."""
    import spacy

    nlp = spacy.blank("en")
    add_tagger(nlp, factory, backbone, model)
    nlp.initialize(lambda: train_examples(nlp, corpus))
    return nlp


def pipe_system(name: str, label: str, nlp, corpus: Corpus, batch_size: int, group: str, **extra: Any) -> System:
    """``nlp.pipe`` over fresh Docs of the corpus' words (made untimed before each pass)."""

    def run(docs: list) -> list:
        return list(nlp.pipe(docs, batch_size=batch_size))

    return System(
        name,
        label,
        run,
        corpus.n_words,
        prepare=lambda: make_docs(nlp, corpus),
        group=group,
        extra={"batch_size": batch_size, "docs": len(corpus.words), **extra},
    )
