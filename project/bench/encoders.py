"""Encoder comparisons on MiniLM: 1b (against the raw forward), 2a (spaCy ``ner`` + spacy-transformers) and
2b (a ``transformers`` token-classification pipeline); then 7a, the scaling of ``seqlab_multitask_ner``."""

import gc
from typing import Any, Dict

from corpus import Corpus, train_examples
from measure import Bench, System
from scaling import scaling
from seqlab_access import resolve_model_name
from systems import load_tokenizer, pipe_system, raw_forward_system, seqlab_nlp

WNUT_LABELS = [
    "company",
    "facility",
    "geo-loc",
    "movie",
    "musicartist",
    "other",
    "person",
    "product",
    "sportsteam",
    "tvshow",
]


def spacy_transformers_nlp(model_dir: str, corpus: Corpus):
    """spaCy's own transformer NER (as ``spacy init config -p ner`` writes it for accuracy) on the same encoder."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": model_dir,
                "mixed_precision": False,
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
                "tokenizer_config": {"use_fast": True},
                "transformer_config": {},
            },
        },
    )
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 64,
                "maxout_pieces": 2,
                "use_upper": False,
                "nO": None,
                "tok2vec": {
                    "@architectures": "spacy-transformers.TransformerListener.v1",
                    "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"},
                    "upstream": "*",
                },
            }
        },
    )
    nlp.initialize(lambda: train_examples(nlp, corpus))
    return nlp


def hf_pipeline_system(model_dir: str, corpus: Corpus, batch_size: int, group: str) -> System:
    import torch
    from transformers import AutoModelForTokenClassification, pipeline

    labels = ["O"] + [f"{p}-{label}" for label in WNUT_LABELS for p in "BI"]
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    ).eval()
    classifier = pipeline("token-classification", model=model, tokenizer=load_tokenizer(model_dir), device=-1)

    def run(_: Any) -> list:
        return list(classifier(corpus.texts, batch_size=batch_size))

    return System(
        "hf_token_classification",
        "transformers pipeline (MiniLM)",
        run,
        corpus.n_words,
        group=group,
        extra={"batch_size": batch_size, "docs": len(corpus.texts)},
    )


def encoder_phase(bench: Bench, corpus: Corpus, settings: Dict[str, Any]) -> None:
    args, batch = bench.args, settings["encoder_batch"]
    encoder = resolve_model_name(args.encoder)
    raw = raw_forward_system("encoder_raw_forward", "MiniLM raw forward", encoder, corpus, batch, "encoder")
    mt_nlp = seqlab_nlp("seqlab_multitask_ner", {"name": encoder}, corpus)
    multitask = pipe_system("seqlab_multitask_ner", "seqlab_multitask_ner (MiniLM)", mt_nlp, corpus, batch, "encoder")
    trf = pipe_system(
        "spacy_transformers_ner",
        "spaCy ner + spacy-transformers (MiniLM)",
        spacy_transformers_nlp(encoder, corpus),
        corpus,
        batch,
        "encoder",
    )
    hf = hf_pipeline_system(encoder, corpus, batch, "encoder")
    bench.compare([raw, multitask, trf, hf])
    bench.measure(
        "1b",
        "seqlab_multitask_ner vs raw MiniLM forward on length-sorted batches (words/s)",
        raw.wall / multitask.wall,
        ">=",
        0.90,
        "words/s of nlp.pipe (no signals) over words/s of tokenizer + AutoModel forward over the same texts, sorted by "
        "piece count once and cut into batches of the same size (the limit)",
        systems=[multitask.name, raw.name],
        ratio_cpu=raw.cpu / multitask.cpu,
    )
    bench.measure(
        "2a",
        "seqlab_multitask_ner vs spaCy ner + spacy-transformers (words/s)",
        trf.wall / multitask.wall,
        ">=",
        1.0,
        "both nlp.pipe on the same Docs and batch size, same MiniLM",
        systems=[multitask.name, trf.name],
        ratio_cpu=trf.cpu / multitask.cpu,
    )
    bench.measure(
        "2b",
        "seqlab_multitask_ner vs transformers token-classification pipeline (words/s)",
        hf.wall / multitask.wall,
        ">=",
        1.0,
        "pipeline(texts, batch_size) with AutoModelForTokenClassification (random head) on the same MiniLM",
        systems=[multitask.name, hf.name],
        ratio_cpu=hf.cpu / multitask.cpu,
    )
    del raw, trf, hf
    gc.collect()
    scaling(bench, "seqlab_multitask_ner", mt_nlp, corpus, settings["lengths"], "7a")
