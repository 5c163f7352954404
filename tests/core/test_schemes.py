"""Label schemes: span/tag round trips, agreement with seqeval, repair, transition masks, errors.

The oracles are seqeval (strict ``Entities`` and conlleval-style ``get_entities``) and
spaCy's ``biluo_to_iob``, never spacy_seqlab's own code.
"""

from itertools import groupby
from typing import List, Optional, Tuple

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import BILOU, IOB2, IOBES, Entities
from spacy.training.iob_utils import biluo_to_iob
from strategies import sized_span_tuples, span_tuples

from spacy_seqlab.core.schemes import (
    TagSet,
    convert_tags,
    detect_scheme,
    repair_tags,
    spans_to_tags,
    split_tag,
    tag_inventory,
    tags_to_spans,
    validate_scheme,
)

# "geo-loc" (a WNUT-16 label) checks that a hyphen inside a label is kept.
LABELS = ["PER", "LOC", "geo-loc"]
SPAN_SCHEMES = ["iob2", "bioes"]
REPAIRS = ["strict", "lenient"]
SEQEVAL = {"iob2": IOB2, "bioes": IOBES}
FEW = settings(max_examples=200, deadline=None)


def tag_sequences(prefixes: str, max_size: int = 12):
    """Random (mostly ill-formed) tag sequences over ``prefixes`` and LABELS."""
    tags = ["O"] + [f"{p}-{label}" for p in prefixes for label in LABELS]
    return st.lists(st.sampled_from(tags), max_size=max_size)


SCHEME_PREFIXES = {"iob2": "BI", "bioes": "BIESLU"}  # bioes: both the E/S and spaCy's L/U spelling


def as_iobes(tags: List[str]) -> List[str]:
    """spaCy's BILUO spelling → seqeval's IOBES spelling."""
    return [{"L": "E", "U": "S"}.get(tag[0], tag[0]) + tag[1:] for tag in tags]


@st.composite
def scheme_and_tags(draw) -> Tuple[str, List[str]]:
    scheme = draw(st.sampled_from(SPAN_SCHEMES))
    return scheme, draw(tag_sequences(SCHEME_PREFIXES[scheme]))


# -- round trips and agreement with seqeval --------------------------------------------------


@FEW
@given(sized_span_tuples(LABELS, max_tokens=15), st.sampled_from(SPAN_SCHEMES), st.sampled_from(REPAIRS))
def test_spans_to_tags_to_spans_is_identity(sized, scheme, repair):
    n_tokens, spans = sized
    tags = spans_to_tags(n_tokens, spans, scheme)
    assert len(tags) == n_tokens
    assert tags_to_spans(tags, scheme, repair=repair) == spans


@FEW
@given(tag_sequences("BI"))
def test_strict_iob2_is_seqeval_strict(tags):
    expected = [(e.start, e.end, e.tag) for e in Entities([tags], IOB2).entities[0]]
    assert tags_to_spans(tags, "iob2", repair="strict") == expected


@FEW
@given(tag_sequences("BIESLU"))
def test_strict_bioes_is_seqeval_strict_iobes(tags):
    expected = [(e.start, e.end, e.tag) for e in Entities([as_iobes(tags)], IOBES).entities[0]]
    assert tags_to_spans(tags, "bioes", repair="strict") == expected


@FEW
@given(tag_sequences("BILU"))
def test_strict_bioes_reads_biluo_as_seqeval_bilou(tags):
    expected = [(e.start, e.end, e.tag) for e in Entities([tags], BILOU).entities[0]]
    assert tags_to_spans(tags, "bioes", repair="strict") == expected


@FEW
@given(tag_sequences("BI"))
def test_lenient_iob2_is_conlleval_get_entities(tags):
    expected = [(start, end + 1, label) for label, start, end in get_entities(tags)]
    assert tags_to_spans(tags, "iob2", repair="lenient") == expected


@FEW
@given(tag_sequences("BIESLU"))
def test_lenient_bioes_is_conlleval_get_entities(tags):
    expected = [(start, end + 1, label) for label, start, end in get_entities(as_iobes(tags))]
    assert tags_to_spans(tags, "bioes", repair="lenient") == expected


def test_strict_and_lenient_differ_on_orphan_inside_tags():
    tags = ["I-PER", "O", "B-LOC", "I-PER", "I-PER"]
    assert tags_to_spans(tags, "iob2", repair="strict") == [(2, 3, "LOC")]
    assert tags_to_spans(tags, "iob2", repair="lenient") == [(0, 1, "PER"), (2, 3, "LOC"), (3, 5, "PER")]
    # A BIOES chunk must be closed by E: B I O is no span in strict mode.
    assert tags_to_spans(["B-PER", "I-PER", "O", "S-LOC"], "bioes") == [(3, 4, "LOC")]


# -- repair --------------------------------------------------------------------------------


@FEW
@given(scheme_and_tags(), st.sampled_from(REPAIRS))
def test_repair_is_idempotent_well_formed_and_keeps_the_reading(scheme_tags, repair):
    scheme, tags = scheme_tags
    repaired = repair_tags(tags, scheme, repair=repair)
    assert len(repaired) == len(tags)
    assert repair_tags(repaired, scheme, repair=repair) == repaired
    assert tags_to_spans(repaired, scheme, repair="strict") == tags_to_spans(repaired, scheme, repair="lenient")
    assert tags_to_spans(repaired, scheme, repair="strict") == tags_to_spans(tags, scheme, repair=repair)


def test_repair_examples():
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-ORG"]
    assert repair_tags(tags, "iob2", repair="strict") == ["O", "O", "O", "B-LOC", "O"]
    assert repair_tags(tags, "iob2", repair="lenient") == ["B-PER", "I-PER", "O", "B-LOC", "B-ORG"]
    assert repair_tags(["B-PER", "I-PER", "U-LOC"], "bioes", repair="lenient") == ["B-PER", "E-PER", "S-LOC"]


# -- transition masks ------------------------------------------------------------------------


def allowed_by_mask(tagset: TagSet, ids: List[int]) -> bool:
    allowed, first, last = tagset.transition_mask()
    if not ids:
        return True
    return bool(first[ids[0]] and last[ids[-1]] and all(allowed[a, b] for a, b in zip(ids, ids[1:])))


@st.composite
def tagset_sequences(draw) -> Tuple[TagSet, List[str]]:
    """Uniformly random inventory tags (mostly ill-formed) or well-formed tags written from spans."""
    scheme = draw(st.sampled_from(SPAN_SCHEMES))
    tagset = TagSet(LABELS, scheme)
    n_tokens = draw(st.integers(0, 8))
    random_tags = st.lists(st.sampled_from(tagset.tags), min_size=n_tokens, max_size=n_tokens)
    from_spans = span_tuples(n_tokens, LABELS).map(lambda spans: spans_to_tags(n_tokens, spans, scheme))
    return tagset, draw(st.one_of(random_tags, from_spans))


@settings(max_examples=300, deadline=None)
@given(tagset_sequences())
def test_transition_mask_allows_exactly_the_well_formed_sequences(tagset_tags):
    tagset, tags = tagset_tags
    well_formed = repair_tags(tags, tagset.scheme, repair="strict") == tags
    assert allowed_by_mask(tagset, [tagset.index[tag] for tag in tags]) == well_formed


def test_transition_mask_shapes_and_plain_tags():
    tagset = TagSet(["PER", "LOC"], "bioes")
    allowed, first, last = tagset.transition_mask()
    assert allowed.shape == (9, 9) and first.shape == last.shape == (9,)
    plain = TagSet(["NOUN", "VERB"], "tags")
    allowed, first, last = plain.transition_mask()
    assert allowed.all() and first.all() and last.all()


# -- convert_tags ---------------------------------------------------------------------------


@FEW
@given(sized_span_tuples(LABELS, max_tokens=15), st.sampled_from(SPAN_SCHEMES), st.data())
def test_convert_tags_keeps_missing_positions(sized, target, data):
    n_tokens, spans = sized
    tags: List[Optional[str]] = list(spans_to_tags(n_tokens, spans, "bioes"))
    missing = data.draw(st.lists(st.booleans(), min_size=n_tokens, max_size=n_tokens))
    tags = [None if gone else tag for tag, gone in zip(tags, missing)]
    converted = convert_tags(tags, target)
    assert [tag is None for tag in converted] == missing
    # Each run between missing tokens comes out as well-formed tags of the target scheme.
    for is_missing, group in groupby(converted, key=lambda tag: tag is None):
        if not is_missing:
            run = list(group)
            assert repair_tags(run, target, repair="strict") == run


@FEW
@given(sized_span_tuples(LABELS, max_tokens=15))
def test_convert_tags_biluo_to_iob2_matches_spacy(sized):
    n_tokens, spans = sized
    biluo = [tag.replace("E-", "L-", 1).replace("S-", "U-", 1) for tag in spans_to_tags(n_tokens, spans, "bioes")]
    assert convert_tags(biluo, "iob2") == biluo_to_iob(biluo)
    assert convert_tags(convert_tags(biluo, "iob2"), "bioes") == as_iobes(biluo)


def test_convert_tags_splits_spans_at_missing_tokens():
    assert convert_tags(["B-PER", None, "L-PER", "-", "U-LOC"], "bioes") == ["S-PER", None, "S-PER", None, "S-LOC"]
    assert convert_tags([None, None], "iob2") == [None, None]


# -- inventories, detection, TagSet -----------------------------------------------------------


def test_tag_inventory_and_detect_scheme():
    assert tag_inventory(["PER", "LOC", "PER"], "iob2") == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert tag_inventory(["X"], "bioes") == ["O", "B-X", "I-X", "E-X", "S-X"]
    assert tag_inventory(["NN", "VB", "NN"], "tags") == ["NN", "VB"]
    assert detect_scheme(["B-X", "I-X", "O"]) == "iob2"
    assert detect_scheme(["O", "U-X"]) == "bioes"
    assert detect_scheme([]) == "iob2"


def test_tagset_encodes_and_decodes():
    tagset = TagSet(["PER", "LOC"], "iob2")
    ids = tagset.encode(["B-PER", "I-PER", None, "B-LOC"])
    assert ids.tolist() == [1, 2, -1, 3]
    assert tagset.encode(["B-ORG"], unknown="missing").tolist() == [-1]
    assert tagset.decode_spans(numpy.array([1, 2, 0, 3])) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert tagset.decode_spans(numpy.array([2, 0, 3]), repair="lenient") == [(0, 1, "PER"), (2, 3, "LOC")]
    assert tagset.decode_spans(numpy.array([2, 0, 3]), repair="strict") == [(2, 3, "LOC")]
    assert tagset.decode_spans(numpy.zeros(0, dtype=numpy.int64)) == []


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["X-PER", "B-", "BPER", "B_PER", "", "o"])
def test_ill_formed_tags_are_named(tag):
    with pytest.raises(ValueError, match=f"Ill-formed tag {tag!r}"):
        split_tag(tag)
    with pytest.raises(ValueError, match="Ill-formed tag"):
        tags_to_spans(["O", tag])


@pytest.mark.parametrize(
    "call",
    [
        lambda: validate_scheme("bilou"),
        lambda: tags_to_spans(["O"], "bilou"),
        lambda: spans_to_tags(1, [], "bilou"),
        lambda: TagSet(["X"], "bilou"),
        lambda: tag_inventory(["X"], "bilou"),
    ],
)
def test_unknown_scheme_is_named(call):
    with pytest.raises(ValueError, match="Unknown label scheme 'bilou': expected one of iob2, bioes"):
        call()


def test_tags_scheme_has_no_spans():
    with pytest.raises(ValueError, match="Unknown label scheme 'tags': expected one of iob2, bioes$"):
        spans_to_tags(2, [], "tags")
    with pytest.raises(ValueError, match="Scheme 'tags' has no spans"):
        TagSet(["NN"], "tags").decode_spans(numpy.array([0]))


def test_unknown_repair_is_named():
    with pytest.raises(ValueError, match="Unknown repair mode 'loose': expected one of strict, lenient"):
        tags_to_spans(["B-X"], repair="loose")


@pytest.mark.parametrize("span", [(-1, 1, "X"), (2, 2, "X"), (3, 2, "X"), (0, 4, "X")])
def test_out_of_range_spans_are_named(span):
    with pytest.raises(ValueError, match=r"is out of range for 3 tokens"):
        spans_to_tags(3, [span])


def test_overlapping_spans_are_rejected():
    with pytest.raises(ValueError, match=r"Span \(1, 3, 'LOC'\) overlaps another span"):
        spans_to_tags(4, [(0, 2, "PER"), (1, 3, "LOC")])


@pytest.mark.parametrize("label", ["O", ""])
def test_invalid_span_labels_are_named(label):
    with pytest.raises(ValueError, match=f"Invalid span label {label!r}"):
        tag_inventory([label], "iob2")


def test_unknown_tag_in_encode_is_named():
    with pytest.raises(ValueError, match=r"Unknown tag 'B-ORG' for labels \['PER'\]"):
        TagSet(["PER"], "iob2").encode(["O", "B-ORG"])
