"""Targets: parsing, gold tags aligned to the predicted tokens, reading and writing Docs."""

import numpy
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span
from spacy.training import Example
from strategies import sized_span_tuples

from spacy_seqlab.core.schemes import TagSet
from spacy_seqlab.core.targets import Target

VOCAB = spacy.blank("en").vocab
LABELS = ["PER", "LOC", "geo-loc"]

# "I love New York-based firms." tokenized two ways: the reference splits "York-based".
REF_WORDS = ["I", "love", "New", "York", "-", "based", "firms", "."]
REF_SPACES = [True, True, True, False, False, True, False, False]
PRED_WORDS = ["I", "love", "New", "York-based", "firms", "."]
PRED_SPACES = [True, True, True, True, False, False]


def words_doc(n_tokens: int) -> Doc:
    return Doc(VOCAB, words=[f"w{i}" for i in range(n_tokens)])


def mismatch_example(**reference_annotation) -> Example:
    reference = Doc(VOCAB, words=REF_WORDS, spaces=REF_SPACES, **reference_annotation)
    predicted = Doc(VOCAB, words=PRED_WORDS, spaces=PRED_SPACES)
    assert reference.text == predicted.text
    return Example(predicted, reference)


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, kind, key",
    [
        ("ents", "ents", None),
        ("spans:sc", "spans", "sc"),
        ("spans:my key", "spans", "my key"),
        ("tag", "tag", None),
        ("pos", "pos", None),
    ],
)
def test_parse_valid_targets(value, kind, key):
    target = Target.parse(value)
    assert (target.kind, target.key) == (kind, key)
    assert str(target) == value
    assert target.is_span == (kind in ("ents", "spans"))
    assert target.default_scheme == ("iob2" if target.is_span else "tags")


@pytest.mark.parametrize("value", ["ent", "", "spans:", "spans:  ", "SPANS:sc", "tags", "spans", None])
def test_parse_invalid_targets(value):
    with pytest.raises(ValueError, match=f"Invalid target {value!r}: expected one of ents, spans:KEY, tag, pos"):
        Target.parse(value)


@pytest.mark.parametrize(
    "value, scheme, message",
    [
        ("ents", "tags", "Target ents holds spans: scheme must be one of iob2, bioes, not 'tags'"),
        ("spans:sc", "tags", "Target spans:sc holds spans"),
        ("pos", "iob2", "Target pos holds Universal POS tags: scheme must be 'tags', not 'iob2'"),
        ("tag", "bilou", "Unknown label scheme 'bilou'"),
    ],
)
def test_check_scheme_rejects_mismatches(value, scheme, message):
    with pytest.raises(ValueError, match=message):
        Target.parse(value).check_scheme(scheme)


@pytest.mark.parametrize(
    "value, scheme", [("ents", "bioes"), ("spans:sc", "iob2"), ("tag", "iob2"), ("tag", "tags"), ("pos", "tags")]
)
def test_check_scheme_accepts_matching_schemes(value, scheme):
    assert Target.parse(value).check_scheme(scheme) == scheme


# -- gold tags -------------------------------------------------------------------------------


def test_gold_ents_keep_missing_annotation_missing():
    reference = Doc(VOCAB, words=words_doc(5).text.split(), ents=["B-PER", "I-PER", None, "O", "B-LOC"])
    example = Example(words_doc(5), reference)
    target = Target.parse("ents")
    assert target.gold_tags(example, "iob2") == ["B-PER", "I-PER", None, "O", "B-LOC"]
    assert target.gold_tags(example, "bioes") == ["B-PER", "E-PER", None, "O", "S-LOC"]
    unannotated = Example(words_doc(2), words_doc(2))
    assert target.gold_tags(unannotated, "iob2") == [None, None]


def test_gold_ents_on_misaligned_tokens_are_missing_not_outside():
    example = mismatch_example(ents=["O", "O", "B-LOC", "I-LOC", "O", "O", "B-ORG", "O"])
    # "New York" ends inside the predicted token "York-based": neither can be labelled.
    assert Target.parse("ents").gold_tags(example, "iob2") == ["O", "O", None, None, "B-ORG", "O"]


def test_gold_ents_follow_a_finer_predicted_tokenization():
    reference = Doc(VOCAB, words=["New York", "is", "big"], spaces=[True, True, False], ents=["B-LOC", "O", "O"])
    predicted = Doc(VOCAB, words=["New", "York", "is", "big"], spaces=[True, True, True, False])
    assert Target.parse("ents").gold_tags(Example(predicted, reference), "bioes") == ["B-LOC", "E-LOC", "O", "O"]


def test_gold_spans_absent_key_is_all_missing():
    reference = words_doc(3)
    reference.spans["other"] = [Span(reference, 0, 1, "A")]
    assert Target.parse("spans:sc").gold_tags(Example(words_doc(3), reference), "iob2") == [None, None, None]


def test_gold_spans_resolve_overlaps_to_the_longest():
    reference = words_doc(5)
    reference.spans["sc"] = [Span(reference, 1, 2, "B"), Span(reference, 0, 3, "A"), Span(reference, 4, 5, "C")]
    example = Example(words_doc(5), reference)
    assert Target.parse("spans:sc").gold_tags(example, "iob2") == ["B-A", "I-A", "I-A", "O", "B-C"]
    assert Target.parse("spans:sc").gold_tags(example, "bioes") == ["B-A", "I-A", "E-A", "O", "S-C"]


def test_gold_spans_on_misaligned_tokens_are_missing_not_outside():
    # Same data as test_gold_ents_on_misaligned_tokens_are_missing_not_outside, stored as spans.
    example = mismatch_example()
    reference = example.reference
    reference.spans["sc"] = [Span(reference, 2, 4, "LOC"), Span(reference, 6, 7, "ORG")]
    assert Target.parse("spans:sc").gold_tags(example, "iob2") == ["O", "O", None, None, "B-ORG", "O"]


@pytest.mark.parametrize(
    "attr, values",
    [
        ("tag", ["PRP", "VBP", "NNP", "NNP", "HYPH", "VBN", "", "."]),
        ("pos", ["PRON", "VERB", "PROPN", "PROPN", "PUNCT", "VERB", "", "PUNCT"]),
    ],
)
def test_gold_token_tags_are_missing_where_unannotated_or_misaligned(attr, values):
    example = mismatch_example(**{"tags" if attr == "tag" else "pos": values})
    # "York-based" covers three reference tokens; "firms" has no gold value.
    assert Target.parse(attr).gold_tags(example, "tags") == values[:3] + [None, None, values[7]]


# -- reading a Doc's own annotation ------------------------------------------------------------


def test_doc_tags_and_labels_in():
    doc = Doc(
        VOCAB, words=["a", "b", "c", "d"], ents=["B-PER", "I-PER", "O", "B-geo-loc"], tags=["B-NP", "I-NP", "O", ""]
    )
    doc.spans["sc"] = [Span(doc, 0, 3, "A"), Span(doc, 1, 2, "B")]
    ents, spans, tag = Target.parse("ents"), Target.parse("spans:sc"), Target.parse("tag")
    assert ents.doc_tags(doc, "bioes") == ["B-PER", "E-PER", "O", "S-geo-loc"]
    assert ents.labels_in(doc, "iob2") == {"PER", "geo-loc"}
    assert spans.doc_spans(doc) == [(0, 3, "A")]
    assert Target.parse("spans:none").doc_tags(doc, "iob2") == ["O"] * 4
    assert tag.doc_tags(doc, "iob2") == ["B-NP", "I-NP", "O", ""]
    assert tag.labels_in(doc, "iob2") == {"NP"}
    assert tag.labels_in(doc, "tags") == {"B-NP", "I-NP", "O"}
    with pytest.raises(ValueError, match="Target tag holds per-token tags, not spans"):
        tag.doc_spans(doc)


# -- writing ---------------------------------------------------------------------------------


def test_write_ents_repairs_orphan_inside_tags():
    tagset = TagSet(["PER", "LOC"], "iob2")
    ids = tagset.encode(["I-PER", "I-PER", "O", "B-LOC", "I-LOC"])
    doc = Doc(VOCAB, words=["a", "b", "c", "d", "e"], ents=["B-PER", "O", "O", "O", "O"])
    Target.parse("ents").write(doc, ids, tagset)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(3, 5, "LOC")]  # old PER is replaced
    assert [t.ent_iob_ for t in doc] == ["O", "O", "O", "B", "I"]  # outside, not missing
    Target.parse("ents").write(doc, ids, tagset, repair="lenient")
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "PER"), (3, 5, "LOC")]


def test_write_spans_sets_a_span_group():
    tagset = TagSet(["A"], "bioes")
    doc = words_doc(4)
    Target.parse("spans:sc").write(doc, tagset.encode(["B-A", "E-A", "B-A", "I-A"]), tagset)
    assert [(s.start, s.end, s.label_) for s in doc.spans["sc"]] == [(0, 2, "A")]  # unclosed B I dropped
    assert doc.spans["sc"].name == "sc"


def test_write_tag_and_pos():
    tagset = TagSet(["NOUN", "VERB"], "tags")
    doc = words_doc(3)
    Target.parse("tag").write(doc, numpy.array([1, 0, 1]), tagset)
    Target.parse("pos").write(doc, numpy.array([0, 1, 0]), tagset)
    assert [t.tag_ for t in doc] == ["VERB", "NOUN", "VERB"]
    assert [t.pos_ for t in doc] == ["NOUN", "VERB", "NOUN"]


def test_write_pos_rejects_non_upos_tags():
    with pytest.raises(ValueError, match=r"Target pos needs Universal POS tags; not UPOS: \['NN', 'VBZ'\]"):
        Target.parse("pos").write(words_doc(2), numpy.array([0, 1]), TagSet(["NN", "VBZ", "NOUN"], "tags"))


@pytest.mark.parametrize("value", ["ents", "spans:sc", "tag", "pos"])
def test_write_empty_doc(value):
    target = Target.parse(value)
    tagset = TagSet(["NOUN"], target.default_scheme)
    doc = words_doc(0)
    target.write(doc, numpy.zeros(0, dtype=numpy.int64), tagset)
    assert len(doc) == 0 and doc.ents == ()
    if target.kind == "spans":
        assert list(doc.spans["sc"]) == []


def test_write_rejects_wrong_number_of_predictions():
    with pytest.raises(ValueError, match="Got 2 predictions for a Doc of 3 tokens"):
        Target.parse("ents").write(words_doc(3), numpy.array([0, 0]), TagSet(["PER"], "iob2"))


# -- round trip ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    sized_span_tuples(LABELS, max_tokens=12), st.sampled_from(["iob2", "bioes"]), st.sampled_from(["ents", "spans:sc"])
)
def test_doc_tags_encode_write_round_trip(doc_spans, scheme, value):
    n_tokens, spans = doc_spans
    target = Target.parse(value)
    source = words_doc(n_tokens)
    if target.kind == "ents":
        source.set_ents([Span(source, s, e, label) for s, e, label in spans], default="outside")
    else:
        source.spans["sc"] = [Span(source, s, e, label) for s, e, label in spans]
    tagset = TagSet(LABELS, scheme)
    written = words_doc(n_tokens)
    target.write(written, tagset.encode(target.doc_tags(source, scheme)), tagset)
    assert target.doc_spans(written) == spans
    if target.kind == "ents":
        assert [(e.start, e.end, e.label_) for e in written.ents] == [(e.start, e.end, e.label_) for e in source.ents]
