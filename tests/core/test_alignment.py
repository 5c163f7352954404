import unicodedata

import numpy
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacy_seqlab.core.alignment import align_docs, align_offsets
from spacy_seqlab.hf.model import special_tokens_around

STYLES = ("bytelevel", "metaspace", "wordpiece")
HOSTILE = [
    "",
    "   ",
    "\n\n\t \n",
    "!!! ... ???",
    "x",
    "Family 👩‍👩‍👧‍👦 and thumbs 👍🏽👍🏿 and flags 🇭🇷🇺🇸.",
    "Combining: e\u0301te\u0301 cafe\u0301 Zu\u0308rich a\u0323\u0302",
    "RTL مرحبا بالعالم mixed with English שלום 123 עולם.",
    "Tabs\tinside\t\twords and\nnew\n\n\nlines  and   spaces",
    "Control \x00 NUL \x07 bell \x1b escape \u200b zero-width \ufeff BOM",
    "Scripts never seen: ᚠᚢᚦᚨᚱᚲ ꦲꦏ꧀ꦱꦫ 𓀀𓀁 ⴰⵣⵓⵍ ᐊᐃᑦ",
    "can't won't y'all O'Neill e-mail@x.com https://example.org/a?b=c",
    "a" * 5000,
]

nlp = spacy.blank("en")


def _check_invariants(doc, alignment, offsets):
    text = doc.text
    assert alignment.n_tokens == len(doc)
    for t_idx, p_idx in zip(alignment.pair_token, alignment.pair_piece):
        token = doc[int(t_idx)]
        s, e = offsets[p_idx]
        # A linked piece overlaps its token's characters.
        assert s < token.idx + len(token) and token.idx < e, (token.text, text[s:e])
    for token in doc:
        pieces = alignment.pair_piece[alignment.pair_token == token.i]
        if len(pieces):
            assert alignment.first[token.i] == pieces.min() and alignment.last[token.i] == pieces.max()
        else:
            assert alignment.first[token.i] == -1 == alignment.last[token.i]
    # Pieces with visible characters always reach a token.
    linked = set(alignment.pair_piece.tolist())
    for p_idx, (s, e) in enumerate(offsets):
        if e > s and text[s:e].strip():
            assert p_idx in linked, repr(text[s:e])


def _dropped_by_tokenizer(token_text):
    """Characters a normalizing tokenizer (BERT) may remove: whitespace, controls, format marks, combining marks."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Mn", "Co", "Cn") for ch in token_text)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_align(tokenizers_by_style, style, text):
    tokenizer = tokenizers_by_style[style]
    doc = nlp(text)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    alignment = align_docs([doc], tokenizer)[0]
    assert alignment.piece_ids.tolist() == encoded["input_ids"]
    _check_invariants(doc, alignment, encoded["offset_mapping"])
    for i in alignment.orphans:
        token = doc[int(i)]
        if style == "bytelevel":
            # Byte-level BPE keeps every byte: only whitespace tokens can be left without a piece.
            assert token.is_space, token.text
        elif style == "wordpiece":
            assert _dropped_by_tokenizer(token.text), token.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_unicode_aligns(tokenizers_by_style, text):
    doc = nlp(text)
    for style in STYLES:
        tokenizer = tokenizers_by_style[style]
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        alignment = align_docs([doc], tokenizer)[0]
        _check_invariants(doc, alignment, encoded["offset_mapping"])
        if style == "bytelevel":
            assert all(doc[int(i)].is_space for i in alignment.orphans)


def test_leading_space_pieces_belong_to_the_word_only(tokenizers_by_style):
    doc = nlp("New  York")  # two spaces: spaCy makes a whitespace token
    for style in ("bytelevel", "metaspace"):
        tokenizer = tokenizers_by_style[style]
        alignment = align_docs([doc], tokenizer)[0]
        pieces = tokenizer.convert_ids_to_tokens(alignment.piece_ids.tolist())
        york = [pieces[p] for p in alignment.pair_piece[alignment.pair_token == 2]]
        assert "".join(york).lstrip("Ġ▁") == "York"
        new = [pieces[p] for p in alignment.pair_piece[alignment.pair_token == 0]]
        assert "".join(new).lstrip("Ġ▁") == "New"


def test_piece_spanning_two_tokens_serves_both():
    doc = nlp("can't")
    assert [t.text for t in doc] == ["ca", "n't"]
    alignment = align_offsets(doc, [7, 8], numpy.array([[0, 3], [3, 5]]))  # "can" + "'t"
    assert alignment.first.tolist() == [0, 0] and alignment.last.tolist() == [0, 1]


def test_special_tokens_are_found_around_the_text(tokenizers_by_style):
    t = tokenizers_by_style
    assert special_tokens_around(t["bytelevel"]) == ([t["bytelevel"].bos_token_id], [])
    assert special_tokens_around(t["wordpiece"]) == ([t["wordpiece"].cls_token_id], [t["wordpiece"].sep_token_id])


def test_batch_alignment_equals_one_by_one(tokenizers_by_style):
    docs = [nlp(text) for text in HOSTILE]
    for style in STYLES:
        together = align_docs(docs, tokenizers_by_style[style])
        for doc, a in zip(docs, together):
            b = align_docs([doc], tokenizers_by_style[style])[0]
            assert a.piece_ids.tolist() == b.piece_ids.tolist() and a.first.tolist() == b.first.tolist()


def test_slow_tokenizer_is_refused():
    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="fast"):
        align_docs([nlp("x")], Slow())
