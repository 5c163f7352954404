"""The seqeval scorer and ``seqlab-evaluate``: numbers equal seqeval's strict mode, spaCy's beside them.

Expected tags are built with spaCy's own writers (``doc_to_biluo_tags``, ``biluo_to_iob``),
not with spacy_seqlab's, so a bug in the shared schemes code cannot hide here.
"""

import json
import random
import warnings
from importlib.metadata import entry_points
from typing import List, Tuple

import pytest
import spacy
from confection import Config
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2, IOBES
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.training.iob_utils import biluo_to_iob, doc_to_biluo_tags
from spacy.training.loop import create_evaluation_callback
from spacy.util import registry
from strategies import span_tuples
from typer.testing import CliRunner

from spacy_seqlab.cli.evaluate import app, print_seqeval_scores, seqeval_stems, seqlab_evaluate
from spacy_seqlab.core.scoring import make_seqeval_scorer, seqeval_prf

LABELS = ["PER", "LOC", "ORG"]
VOCAB = spacy.blank("en").vocab

SpanTuple = Tuple[int, int, str]


def make_doc(n_tokens: int, spans: List[SpanTuple]) -> Doc:
    doc = Doc(VOCAB, words=[f"w{i}" for i in range(n_tokens)])
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in spans], default="outside")
    return doc


def reference_tags(doc: Doc, scheme: str) -> List[str]:
    """The Doc's entities as seqeval input, written by spaCy (BILUO) and respelled."""
    biluo = doc_to_biluo_tags(doc)
    if scheme == "iob2":
        return biluo_to_iob(biluo)
    return [{"L": "E", "U": "S"}.get(tag[0], tag[0]) + tag[1:] for tag in biluo]


def seqeval_reference(y_true, y_pred, seqeval_scheme):
    """seqeval's strict-mode metrics with its defaults (zero_division='warn')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(mode="strict", scheme=seqeval_scheme)
        p = precision_score(y_true, y_pred, **kwargs)
        r = recall_score(y_true, y_pred, **kwargs)
        f = f1_score(y_true, y_pred, **kwargs)
        report = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    per_type = {
        label: {"p": row["precision"], "r": row["recall"], "f": row["f1-score"]}
        for label, row in report.items()
        if not label.endswith(" avg")
    }
    return p, r, f, per_type


@st.composite
def gold_pred_docs(draw) -> Tuple[int, List[SpanTuple], List[SpanTuple]]:
    n_tokens = draw(st.integers(0, 12))
    spans = span_tuples(n_tokens, LABELS, max_length=3, outside=2)
    gold = draw(spans)
    # Predictions that often share spans with the gold, so hits, misses and label errors all occur.
    subset = [span for span in gold if draw(st.booleans())]
    relabelled = [(s, e, draw(st.sampled_from(LABELS))) for s, e, _ in gold]
    pred = draw(st.one_of(st.just(gold), st.just(subset), st.just(relabelled), spans))
    return n_tokens, gold, pred


@settings(max_examples=150, deadline=None)
@given(st.lists(gold_pred_docs(), max_size=5), st.sampled_from(["iob2", "bioes"]))
def test_scores_equal_seqeval_strict_on_random_docs(docs, scheme):
    examples = [Example(make_doc(n, pred), make_doc(n, gold)) for n, gold, pred in docs]
    scores = make_seqeval_scorer(scheme=scheme)(examples)
    y_true = [reference_tags(eg.reference, scheme) for eg in examples]
    y_pred = [reference_tags(eg.predicted, scheme) for eg in examples]
    if not examples:
        # seqeval rejects an empty corpus; the scorer gives its "no spans" value.
        assert (scores["seqeval_p"], scores["seqeval_r"], scores["seqeval_f"]) == (0.0, 0.0, 0.0)
        assert scores["seqeval_per_type"] == {}
        return
    p, r, f, per_type = seqeval_reference(y_true, y_pred, IOB2 if scheme == "iob2" else IOBES)
    assert scores["seqeval_p"] == p
    assert scores["seqeval_r"] == r
    assert scores["seqeval_f"] == f
    assert all(type(scores[f"seqeval_{k}"]) is float for k in "prf")
    assert scores["seqeval_per_type"] == per_type
    # Same tokens and well-formed spans: strict seqeval is spaCy's exact-span matching.
    if scores["ents_f"] is None:
        assert f == 0.0
    else:
        assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == pytest.approx((p, r, f))


def test_seqeval_prf_counts_and_strict_reading():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    pred = [["B-PER", "I-PER", "O", "I-LOC"], ["B-ORG", "O"]]  # the orphan I-LOC is no span in strict mode
    result = seqeval_prf(gold, pred)
    assert (result["n_gold"], result["n_pred"], result["n_correct"]) == (2, 2, 1)
    assert (result["p"], result["r"], result["f"]) == (0.5, 0.5, 0.5)
    assert result["per_type"] == {
        "LOC": {"p": 0.0, "r": 0.0, "f": 0.0},
        "ORG": {"p": 0.0, "r": 0.0, "f": 0.0},
        "PER": {"p": 1.0, "r": 1.0, "f": 1.0},
    }


def test_seqeval_prf_reads_biluo_spelling_as_bioes():
    gold = [["U-PER", "O", "B-LOC", "L-LOC"]]
    pred = [["S-PER", "O", "B-LOC", "I-LOC"]]  # the LOC chunk never ends: not a span in strict BIOES
    result = seqeval_prf(gold, pred, "bioes")
    p, r, f, _ = seqeval_reference([["S-PER", "O", "B-LOC", "E-LOC"]], pred, IOBES)
    assert (result["p"], result["r"], result["f"]) == (p, r, f) == (1.0, 0.5, pytest.approx(2 / 3))


@pytest.mark.parametrize(
    "gold, pred, scheme, message",
    [
        ([["O"]], [["O"], ["O"]], "iob2", "1 gold sentences but 2 predicted"),
        ([["O", "O"]], [["O"]], "iob2", "Sentence 0: 2 gold tags but 1 predicted"),
        ([["NN"]], [["O"]], "iob2", "Ill-formed tag 'NN'"),
        ([["S-PER"]], [["O"]], "iob2", "not an IOB2 tag"),
        ([["O"]], [["O"]], "tags", "Unknown label scheme 'tags'"),
    ],
)
def test_seqeval_prf_rejects_bad_input(gold, pred, scheme, message):
    with pytest.raises(ValueError, match=message):
        seqeval_prf(gold, pred, scheme)


def test_empty_docs_and_docs_without_entities_score_zero():
    examples = [Example(make_doc(0, []), make_doc(0, [])), Example(make_doc(3, []), make_doc(3, []))]
    scores = make_seqeval_scorer()(examples)
    assert (scores["seqeval_p"], scores["seqeval_r"], scores["seqeval_f"]) == (0.0, 0.0, 0.0)
    assert scores["seqeval_per_type"] == {}
    assert scores["ents_f"] is None  # spaCy's value for the same input, kept beside it
    assert make_seqeval_scorer()([])["seqeval_f"] == 0.0


def test_examples_without_gold_annotation_are_skipped():
    scored = Example(make_doc(3, [(0, 1, "PER")]), make_doc(3, [(0, 1, "PER")]))
    unannotated = Example(make_doc(2, [(0, 2, "LOC")]), Doc(VOCAB, words=["a", "b"]))
    scores = make_seqeval_scorer()([scored, unannotated])
    assert scores["seqeval_p"] == 1.0  # the LOC prediction on the unannotated doc is no false positive
    assert scores["ents_p"] == pytest.approx(1.0)


def test_tokenization_mismatch_scores_on_predicted_tokens():
    words = ["I", "love", "New", "York", "-", "based", "firms", "."]
    reference = Doc(
        VOCAB, words=words, spaces=[1, 1, 1, 0, 0, 1, 0, 0], ents=["O", "O", "B-LOC", "I-LOC", "O", "O", "B-ORG", "O"]
    )
    predicted = Doc(VOCAB, words=["I", "love", "New", "York-based", "firms", "."], spaces=[1, 1, 1, 1, 0, 0])
    predicted.set_ents([Span(predicted, 2, 3, "LOC"), Span(predicted, 4, 5, "ORG")], default="outside")
    scores = make_seqeval_scorer()([Example(predicted, reference)])
    # "New York" cannot be aligned to the predicted tokens: gold there is missing, read as O.
    expected = seqeval_reference([["O", "O", "O", "O", "B-ORG", "O"]], [["O", "O", "B-LOC", "O", "B-ORG", "O"]], IOB2)
    assert (scores["seqeval_p"], scores["seqeval_r"], scores["seqeval_f"]) == expected[:3]
    assert expected[:3] == (0.5, 1.0, pytest.approx(2 / 3))
    assert scores["seqeval_per_type"] == expected[3]
    # spaCy maps predictions onto gold tokens instead, so it counts the LOC miss.
    assert (scores["ents_p"], scores["ents_r"]) == pytest.approx((0.5, 0.5))


def test_spans_target_resolves_overlaps_and_keeps_spacy_scores():
    reference = make_doc(6, [])
    reference.spans["sc"] = [Span(reference, 0, 3, "A"), Span(reference, 1, 2, "B"), Span(reference, 4, 6, "A")]
    predicted = make_doc(6, [])
    predicted.spans["sc"] = [Span(predicted, 0, 3, "A"), Span(predicted, 1, 2, "B")]
    no_key = Example(make_doc(2, []), make_doc(2, []))
    no_key.predicted.spans["sc"] = [Span(no_key.predicted, 0, 1, "A")]
    scores = make_seqeval_scorer(target="spans:sc", prefix="seqeval_sc")([Example(predicted, reference), no_key])
    # seqeval sees the longest of overlapping spans: gold A(0,3), A(4,6); predicted A(0,3).
    assert (scores["seqeval_sc_p"], scores["seqeval_sc_r"]) == (1.0, 0.5)
    assert set(scores["seqeval_sc_per_type"]) == {"A"}
    # spaCy's spancat numbers keep the overlap (B is found) and skip the doc without the key.
    assert (scores["spans_sc_p"], scores["spans_sc_r"]) == pytest.approx((1.0, 2 / 3))
    assert set(scores["spans_sc_per_type"]) == {"A", "B"}


def chunk_example(gold_tags: List[str], pred_tags: List[str]) -> Example:
    words = [f"w{i}" for i in range(len(gold_tags))]
    return Example(Doc(VOCAB, words=words, tags=pred_tags), Doc(VOCAB, words=words, tags=gold_tags))


def test_tag_target_scores_chunk_tags_strictly():
    gold = ["B-NP", "I-NP", "B-VP", "B-NP", "I-NP", "O"]
    pred = ["B-NP", "I-NP", "B-VP", "I-NP", "I-NP", ""]  # orphan I-NP run; "" (untagged) reads as O
    scores = make_seqeval_scorer(target="tag", prefix="seqeval_chunk")([chunk_example(gold, pred)])
    p, r, f, per_type = seqeval_reference([gold], [[tag or "O" for tag in pred]], IOB2)
    assert (scores["seqeval_chunk_p"], scores["seqeval_chunk_r"], scores["seqeval_chunk_f"]) == (p, r, f)
    assert (p, r) == (1.0, pytest.approx(2 / 3))  # lenient (conlleval) reading would find a third NP
    assert scores["seqeval_chunk_per_type"] == per_type
    assert scores["tag_acc"] == pytest.approx(4 / 6)


def test_tag_target_with_bioes_accepts_biluo_spelling():
    gold = ["U-NP", "B-VP", "L-VP", "B-NP", "I-NP", "L-NP"]
    pred = ["S-NP", "B-VP", "E-VP", "B-NP", "E-NP", "S-NP"]
    scores = make_seqeval_scorer(target="tag", scheme="bioes")([chunk_example(gold, pred)])
    expected = seqeval_reference([["S-NP", "B-VP", "E-VP", "B-NP", "I-NP", "E-NP"]], [pred], IOBES)
    assert (scores["seqeval_p"], scores["seqeval_r"], scores["seqeval_f"]) == expected[:3]
    assert (scores["seqeval_p"], scores["seqeval_r"]) == (pytest.approx(2 / 4), pytest.approx(2 / 3))


@pytest.mark.parametrize(
    "gold, scheme, message",
    [
        (["NN", "O"], "iob2", "target tag with scheme 'iob2': Ill-formed tag 'NN'"),
        (["S-NP", "O"], "iob2", "scheme='bioes'"),
    ],
)
def test_tag_target_rejects_tags_of_another_scheme(gold, scheme, message):
    with pytest.raises(ValueError, match=message):
        make_seqeval_scorer(target="tag", scheme=scheme)([chunk_example(gold, ["O", "O"])])


@pytest.mark.parametrize("attr", ["tag", "pos"])
def test_plain_tags_score_accuracy_equal_to_spacy(attr):
    rng = random.Random(0)
    values = ["NOUN", "VERB", "DET", "ADJ"]
    examples = []
    for _ in range(8):
        n = rng.randint(1, 9)
        gold = [rng.choice(values + [""]) for _ in range(n)]  # "" is a token without gold
        pred = [tag if rng.random() < 0.6 else rng.choice(values) for tag in gold]
        words = [f"w{i}" for i in range(n)]
        keyword = {"tag": "tags", "pos": "pos"}[attr]
        examples.append(Example(Doc(VOCAB, words=words, **{keyword: pred}), Doc(VOCAB, words=words, **{keyword: gold})))
    scores = make_seqeval_scorer(target=attr, scheme="tags")(examples)
    pairs = [
        (g, p)
        for eg in examples
        for g, p in zip([getattr(t, f"{attr}_") for t in eg.reference], [getattr(t, f"{attr}_") for t in eg.predicted])
        if g
    ]
    assert scores["seqeval_acc"] == sum(g == p for g, p in pairs) / len(pairs)
    assert scores["seqeval_acc"] == pytest.approx(scores[f"{attr}_acc"])
    assert "seqeval_f" not in scores


def test_plain_tags_without_gold_have_no_accuracy():
    words = ["a", "b"]
    example = Example(Doc(VOCAB, words=words, tags=["NN", "NN"]), Doc(VOCAB, words=words))
    scores = make_seqeval_scorer(target="tag", scheme="tags")([example])
    assert scores["seqeval_acc"] is None and scores["tag_acc"] is None


def test_registered_as_scorer_and_entry_point():
    assert registry.scorers.get("spacy_seqlab.seqeval_scorer.v1") is make_seqeval_scorer
    points = {ep.name: ep.value for ep in entry_points(group="spacy_scorers")}
    assert points["spacy_seqlab.seqeval_scorer.v1"] == "spacy_seqlab.core.scoring:make_seqeval_scorer"


def test_resolves_from_config_block():
    config = Config().from_str(
        """
        [scorer]
        @scorers = "spacy_seqlab.seqeval_scorer.v1"
        target = "spans:sc"
        scheme = "bioes"
        prefix = "seqeval_spans"
        """
    )
    scorer = registry.resolve(config)["scorer"]
    reference, predicted = make_doc(3, []), make_doc(3, [])
    reference.spans["sc"] = [Span(reference, 0, 2, "A")]
    predicted.spans["sc"] = [Span(predicted, 0, 2, "A")]
    scores = scorer([Example(predicted, reference)])
    assert scores["seqeval_spans_f"] == 1.0 and scores["spans_sc_f"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"target": "entities"}, "Invalid target 'entities'"),
        ({"target": "spans:"}, "Invalid target 'spans:'"),
        ({"scheme": "bilou"}, "Unknown label scheme 'bilou'"),
        ({"scheme": "tags"}, "Target ents holds spans"),
        ({"target": "pos", "scheme": "iob2"}, "Target pos holds Universal POS tags"),
        ({"prefix": ""}, "Invalid scorer prefix ''"),
        ({"prefix": "ner"}, "Invalid scorer prefix 'ner'"),
        ({"prefix": "seqeval-ner"}, "Invalid scorer prefix 'seqeval-ner'"),
        ({"target": "spans:seqeval", "prefix": "spans_seqeval"}, "would overwrite spaCy's own spans_seqeval"),
    ],
)
def test_invalid_settings_raise_clear_errors(settings_, message):
    with pytest.raises(ValueError, match=message):
        make_seqeval_scorer(**settings_)


def test_invalid_setting_types_are_rejected_by_config_validation():
    config = Config().from_str('[scorer]\n@scorers = "spacy_seqlab.seqeval_scorer.v1"\ntarget = 3')
    with pytest.raises(Exception, match="target"):
        registry.resolve(config)


# -- in a pipeline -------------------------------------------------------------------------

TRAIN = [
    ("Alice visited Paris last May .", [(0, 1, "PER"), (2, 3, "LOC")]),
    ("Bob works for Acme in Berlin .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
    ("Carol met Dave in Rome .", [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")]),
    ("Acme hired Erin .", [(0, 1, "ORG"), (2, 3, "PER")]),
    ("Nothing happened today .", []),
]


def reference_docs(nlp) -> List[Doc]:
    docs = []
    for text, spans in TRAIN:
        doc = nlp.make_doc(text)
        doc.set_ents([Span(doc, s, e, label) for s, e, label in spans], default="outside")
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def trained_ner():
    """A blank English ``ner`` whose factory config uses the seqeval scorer, trained a few steps."""
    nlp = spacy.blank("en")
    nlp.add_pipe("ner", config={"scorer": {"@scorers": "spacy_seqlab.seqeval_scorer.v1"}})
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in reference_docs(nlp)]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(12):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp, examples


def test_nlp_evaluate_reports_seqeval_beside_spacy(trained_ner):
    nlp, examples = trained_ner
    scores = nlp.evaluate(examples)
    assert {"seqeval_p", "seqeval_r", "seqeval_f", "seqeval_per_type", "ents_f"} <= set(scores)
    docs = list(nlp.pipe(eg.reference.text for eg in examples))
    assert sum(len(doc.ents) for doc in docs) > 0  # trained enough to predict entities
    y_true = [reference_tags(eg.reference, "iob2") for eg in examples]
    y_pred = [reference_tags(doc, "iob2") for doc in docs]
    assert scores["seqeval_f"] == seqeval_reference(y_true, y_pred, IOB2)[2]
    assert scores["seqeval_f"] == pytest.approx(scores["ents_f"])


def test_seqeval_f_works_as_a_score_weight(trained_ner):
    nlp, examples = trained_ner
    evaluate = create_evaluation_callback(nlp, lambda _nlp: examples, {"seqeval_f": 1.0, "ents_f": 0.0})
    weighted, scores = evaluate()
    assert weighted == scores["seqeval_f"]


# -- seqlab-evaluate ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(trained_ner, tmp_path_factory):
    nlp, _ = trained_ner
    root = tmp_path_factory.mktemp("seqlab_evaluate")
    nlp.to_disk(root / "model")
    DocBin(docs=reference_docs(nlp)).to_disk(root / "dev.spacy")
    return root


def test_seqlab_evaluate_prints_seqeval_tables(saved_model, capsys):
    output = saved_model / "metrics.json"
    scores = seqlab_evaluate(str(saved_model / "model"), saved_model / "dev.spacy", output=output, silent=False)
    printed = capsys.readouterr().out
    assert "seqeval (strict)" in printed and "seqeval (per type)" in printed
    for key in ("seqeval_p", "seqeval_r", "seqeval_f"):
        assert f"{scores[key] * 100:.2f}" in printed
    for label, row in scores["seqeval_per_type"].items():
        assert label in printed and f"{row['f'] * 100:.2f}" in printed
    assert "NER F" in printed  # spaCy's own table is still printed
    assert json.loads(output.read_text())["seqeval_f"] == pytest.approx(scores["seqeval_f"])


def test_seqlab_evaluate_command_runs_through_spacy_cli(saved_model):
    arguments = ["seqlab-evaluate", str(saved_model / "model"), str(saved_model / "dev.spacy")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "seqeval (strict)" in result.output


def test_print_seqeval_scores_lists_every_prefix(capsys):
    scores = {
        "ents_f": 0.9,
        "seqeval_p": 0.5,
        "seqeval_r": 0.25,
        "seqeval_f": 1 / 3,
        "seqeval_per_type": {"PER": {"p": 0.5, "r": 0.25, "f": 1 / 3}},
        "seqeval_pos_acc": 0.875,
    }
    assert seqeval_stems(scores) == ["seqeval", "seqeval_pos"]
    print_seqeval_scores(scores)
    printed = capsys.readouterr().out
    assert all(value in printed for value in ("50.00", "25.00", "33.33", "87.50", "PER"))
    print_seqeval_scores({"ents_f": 0.9})
    assert "No seqeval scores" in capsys.readouterr().out
