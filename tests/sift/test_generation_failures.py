"""Adversarial and malformed responses for ``seqlab_llm_sft``: valid spans or none, a warning with
a count, never a crash, no dropped doc.

Responses go through the component's reading (``SiftLabeler.read_responses``) and, end to end,
through ``nlp.pipe`` with the model's generation replaced by a fake that returns crafted strings.
"""

import logging
import random
import re
import string
from typing import Dict, List

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

import spacy_seqlab.sift.pipe

TEXT = "Alice met Alice in Paris ."  # Alice(0) met(1) Alice(2) in(3) Paris(4) .(5)
LABELS = ["LOC", "PER"]


@pytest.fixture(scope="module")
def nlp(tiny_model_dir):
    nlp = spacy.blank("en")
    config = {
        "model": {"name": str(tiny_model_dir("llama")), "lora": None},
        "n_demos": 1,
        "selector": "random",
        "max_new_tokens": 8,
        "window": 16,
        "stride": 12,
    }
    nlp.add_pipe("seqlab_llm_sft", config=config)
    examples = []
    for words, ents in [
        (["Alice", "lives", "in", "Paris", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
        (["the", "dog", "sleeps"], ["O"] * 3),
    ]:
        reference = Doc(nlp.vocab, words=words, ents=ents)
        examples.append(Example(nlp.make_doc(reference.text), reference))
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("seqlab_llm_sft").labels == tuple(LABELS)
    return nlp


def _reset(pipe) -> None:
    for key in pipe.stats:
        pipe.stats[key] = 0


# (name, response, expected spans of TEXT, dropped lines, garbage responses)
CASES = [
    ("prose", "The text mentions Alice, a person, who met herself in Paris, which is a location.", [], 1, 1),
    ("prose_multiline", "Sure! Here are the entities:\n\nAlice is a person.\nParis is a city.", [], 3, 1),
    ("json", '{"entities": [{"text": "Alice", "label": "PER"}, {"text": "Paris", "label": "LOC"}]}', [], 1, 1),
    ("json_lines", '[\n  {"Alice": "PER"},\n  {"Paris": "LOC"}\n]', [], 4, 1),
    ("repeated_lines", "Alice | PER\nAlice | PER\nAlice | PER\nAlice | PER", [(0, 1, "PER"), (2, 3, "PER")], 2, 0),
    ("repeated_forever", "Paris | LOC\n" * 2000, [(4, 5, "LOC")], 1999, 0),
    ("labels_other_case", "Alice | per\nParis | Loc", [(0, 1, "PER"), (4, 5, "LOC")], 0, 0),
    ("labels_quoted", "Alice | \"PER\"\nParis | 'loc'", [(0, 1, "PER"), (4, 5, "LOC")], 0, 0),
    ("unknown_labels", "Alice | PERSON\nParis | GPE", [], 2, 1),
    ("spans_not_in_text", "Berlin | LOC\nBob | PER", [], 2, 1),
    (
        "some_spans_not_in_text",
        "Berlin | LOC\nAlice | PER\nRome | LOC\nParis | LOC",
        [(0, 1, "PER"), (4, 5, "LOC")],
        2,
        0,
    ),
    ("text_other_case", "alice | PER\nPARIS | LOC", [], 2, 1),
    ("partial_token", "Alic | PER\nPari | LOC", [], 2, 1),
    ("lookalike_letters", "\u0410lice | PER", [], 1, 1),  # a Cyrillic A
    (
        "never_ends",
        "Alice | PER\nAlice | PER\nParis | LOC\nParis | LOC\nParis | L",
        [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")],
        2,
        0,
    ),
    ("cut_mid_text", "Alice | PER\nPar", [(0, 1, "PER")], 1, 0),
    ("huge_k", "Alice | PER | 99999999999999999999999\nAlice | PER | 2", [(2, 3, "PER")], 1, 0),
    ("k_beyond_text", "Alice | PER | 3", [], 1, 1),
    ("out_of_order", "Paris | LOC\nAlice | PER", [(4, 5, "LOC")], 1, 0),
    ("bullets_and_fences", "```\n- Alice | PER\n2) Paris | LOC\n```", [(0, 1, "PER"), (4, 5, "LOC")], 2, 0),
    ("crlf", "Alice | PER\r\nParis | LOC\r\n", [(0, 1, "PER"), (4, 5, "LOC")], 0, 0),
    ("control_chars", "Alice\x00 | PER\n\x1b[31mParis | LOC\n\ufeff", [], 3, 1),
    ("only_separators", " | \n|||\n | | | ", [], 3, 1),
    ("none_then_spans", "(NONE)\nAlice | PER", [], 0, 0),
    ("empty", "", [], 0, 0),
    ("whitespace", " \n\t\n  ", [], 0, 0),
    ("multi_token_span", "Alice met | PER\nin Paris . | LOC", [(0, 2, "PER"), (3, 6, "LOC")], 0, 0),
    ("overlapping_claims", "Alice met Alice | PER\nmet Alice | PER", [(0, 3, "PER")], 1, 0),
]


@pytest.mark.parametrize("name,response,expected,dropped,garbage", CASES, ids=[c[0] for c in CASES])
def test_read_responses_gives_valid_spans_or_none_and_counts(nlp, caplog, name, response, expected, dropped, garbage):
    pipe = nlp.get_pipe("seqlab_llm_sft")
    _reset(pipe)
    doc = nlp.make_doc(TEXT)
    with caplog.at_level(logging.WARNING, logger="spacy_seqlab"):
        spans = pipe.read_responses(doc, [response])
    assert spans == expected
    assert pipe.stats == {"responses": 1, "dropped_lines": dropped, "garbage_responses": garbage}
    messages = [r.getMessage() for r in caplog.records if r.name == "spacy_seqlab"]
    if dropped or garbage:
        # One warning, giving the count of what was lost.
        assert len(messages) == 1 and re.search(rf"\b{dropped if not garbage else garbage}\b", messages[0]), messages
        assert ("unparsable" in messages[0]) == bool(garbage)
    else:
        assert not messages
    pipe.set_annotations([doc], [spans])
    assert [(e.start, e.end, e.label_) for e in doc.ents] == expected


def test_responses_for_a_long_doc_windows_are_read_each_once(nlp):
    """A doc of many windows; each window answers with junk plus every "Paris" in it: each span comes once."""
    pipe = nlp.get_pipe("seqlab_llm_sft")
    _reset(pipe)
    doc = nlp.make_doc(" ".join(["Alice met Alice in Paris ."] * 10))
    windows = pipe.prompter.windows(doc)
    assert len(windows) > 3
    responses = []
    for s, e in windows:
        lines = ["Here you go:"] + [f"{t.text} | LOC" for t in doc[s:e] if t.text == "Paris"] + ["Nowhere | LOC"]
        responses.append("\n".join(lines))
    spans = pipe.read_responses(doc, responses)
    assert spans == [(t.i, t.i + 1, "LOC") for t in doc if t.text == "Paris"]
    assert pipe.stats["dropped_lines"] == 2 * len(windows)


# -- end to end through nlp.pipe with a fake model --------------------------------------------


def _query(prompt: str) -> str:
    return prompt.rsplit("Text: ", 1)[1].rsplit("\nLabels:\n", 1)[0]


ADVERSARIAL: Dict[str, str] = {name: response for name, response, *_ in CASES}


class FakeGenerate:
    """Stands in for :func:`spacy_seqlab.hf.generation.generate`: the response for a prompt is
    chosen by its query text; a query with "cycle" in it gets the responses in turn."""

    def __init__(self, by_text: Dict[str, str]) -> None:
        self.by_text = by_text
        self.calls: List[int] = []
        self.cycle = list(ADVERSARIAL.values())
        self.position = 0

    def __call__(self, model, tokenizer, prompts, *, max_new_tokens, max_batch_tokens=8192, constraints=None):
        assert max_new_tokens == 8
        self.calls.append(len(prompts))
        responses = []
        for prompt in prompts:
            query = _query(prompt)
            if query in self.by_text:
                responses.append(self.by_text[query])
            else:
                responses.append(self.cycle[self.position % len(self.cycle)])
                self.position += 1
        return responses


def _annotations(docs):
    return [(doc.text, [(e.start, e.end, e.label_) for e in doc.ents]) for doc in docs]


def test_pipe_end_to_end_with_malformed_generations(nlp, monkeypatch, caplog):
    pipe = nlp.get_pipe("seqlab_llm_sft")
    texts = {
        "Alice met Alice in Paris .": "Alice | PER\nAlice | PER\nAlice | PER\nParis | LOC\nParis | L",
        "Bob went home .": '{"Bob": "PER"}',
        "Paris is big .": "paris | LOC\nParis | loc\nParis | LOC",
        "Nothing here": "(none)",
        "Rome and Berlin": "I could not find any entities, sorry.",
    }
    fake = FakeGenerate(texts)
    monkeypatch.setattr(spacy_seqlab.sift.pipe, "generate", fake)
    long_text = " cycle ".join(["Alice met Alice in Paris ."] * 12)  # many windows, each given another bad response
    inputs = list(texts) + ["", "   ", long_text, "cycle Alice Paris", "\x00\t👩‍👩‍👧‍👦 cycle"]
    _reset(pipe)
    with caplog.at_level(logging.WARNING, logger="spacy_seqlab"):
        docs = list(nlp.pipe(inputs, batch_size=3))
    assert [doc.text for doc in docs] == inputs  # no doc dropped, none reordered
    assert (
        sum(fake.calls) == pipe.stats["responses"] and len(fake.calls) == 4
    )  # batches of 3 (+ the empty ones skipped)
    results = dict(_annotations(docs))
    assert results["Alice met Alice in Paris ."] == [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")]
    assert results["Bob went home ."] == []
    assert results["Paris is big ."] == [(0, 1, "LOC")]
    assert results["Nothing here"] == [] and results["Rome and Berlin"] == []
    for doc in docs:
        for ent in doc.ents:
            assert 0 <= ent.start < ent.end <= len(doc) and ent.label_ in LABELS
    assert any(doc.ents for doc in docs[len(texts) :])  # some cycled responses did match
    warned = [r.getMessage() for r in caplog.records if r.name == "spacy_seqlab"]
    assert warned and all(re.search(r"\d+ (of \d+ response|response line)", m) for m in warned), warned
    total = sum(
        int(re.search(r"\((\d+) line", m).group(1))
        if "unparsable" in m
        else int(re.search(r"\] (\d+) response line", m).group(1))
        for m in warned
    )
    assert total == pipe.stats["dropped_lines"] > 0

    # The same responses one doc at a time give the same spans.
    fake_alone = FakeGenerate(texts)
    monkeypatch.setattr(spacy_seqlab.sift.pipe, "generate", fake_alone)
    alone = [nlp(text) for text in inputs]
    assert _annotations(alone) == _annotations(docs)


def test_model_errors_are_not_swallowed(nlp, monkeypatch):
    """A failure inside the model (out of memory, a CUDA error) is not swallowed: it propagates."""

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(spacy_seqlab.sift.pipe, "generate", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(nlp.pipe(["Alice met Bob ."]))


# -- prompts fit the model's positions and max_prompt_tokens -----------------------------------


class MeasuringGenerate:
    """Stands in for ``generate``: records each prompt's length in the model's tokens, and answers
    "Paris | LOC" when the query holds Paris."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.lengths: List[int] = []

    def __call__(self, model, tokenizer, prompts, *, max_new_tokens, max_batch_tokens=8192, constraints=None):
        self.lengths += [len(self.tokenizer(prompt)["input_ids"]) + max_new_tokens for prompt in prompts]
        return ["Paris | LOC" if "Paris" in _query(prompt) else "(none)" for prompt in prompts]


def _random_word(rng: random.Random, n_chars: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n_chars))


def test_no_prompt_exceeds_the_model_positions_or_max_prompt_tokens(nlp, monkeypatch, caplog):
    """A 5,000-character token, and windows of 16 tokens too long in sub-words, on a model of 512
    positions: windows are split until they fit; the token that cannot fit alone is left out with
    a warning naming the doc; the other tokens are still labeled."""
    pipe = nlp.get_pipe("seqlab_llm_sft")
    positions = pipe.module.max_positions
    assert positions == 512
    fake = MeasuringGenerate(pipe.module.tokenizer)
    monkeypatch.setattr(spacy_seqlab.sift.pipe, "generate", fake)
    rng = random.Random(0)
    huge = _random_word(rng, 5000)
    with caplog.at_level(logging.WARNING, logger="spacy_seqlab"):
        doc = nlp(f"Alice met {huge} in Paris .")
    assert fake.lengths and max(fake.lengths) <= positions
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(4, 5, "LOC")]
    warned = [r.getMessage() for r in caplog.records if r.name == "spacy_seqlab"]
    assert (
        len(warned) == 1 and "1 token(s) of a doc starting 'Alice met" in warned[0] and "5000 characters" in warned[0]
    )

    # Each token fits, a window of them does not: split, nothing left out, every token in one query.
    caplog.clear()
    fake.lengths.clear()
    words = [_random_word(rng, 120) for _ in range(15)] + ["Paris"]
    with caplog.at_level(logging.WARNING, logger="spacy_seqlab"):
        doc = nlp(" ".join(words))
    assert max(fake.lengths) <= positions and len(fake.lengths) > 1
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(15, 16, "LOC")]
    assert not [r for r in caplog.records if r.name == "spacy_seqlab"]
    windows = pipe.prompter.windows(doc)
    assert sorted(i for s, e in windows for i in range(s, e)) == list(range(len(doc)))

    # max_prompt_tokens bounds the prompt below the positions too.
    pipe.cfg["max_prompt_tokens"] = 200
    try:
        fake.lengths.clear()
        nlp(" ".join(words))
        assert max(fake.lengths) - 8 <= 200
    finally:
        pipe.cfg["max_prompt_tokens"] = 1024
