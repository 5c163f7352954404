"""Reading CoNLL-style files into gold Docs, the shared split, stats and DocBin conversion."""

import random
import tempfile
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.vocab import Vocab

from spacy_seqlab.core.schemes import spans_to_tags
from spacy_seqlab.data.conll import (
    ConllFormatError,
    ConllSentence,
    check_fractions,
    convert,
    corpus_stats,
    read_conll,
    read_docbin,
    select_split,
    sentences_to_docs,
    split_indices,
)
from spacy_seqlab.data.resources import wnut16_path

CONLL2003_IOB1 = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Anna NNP I-NP B-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O
"""

CONLL2003_IOB2 = CONLL2003_IOB1.replace("I-ORG", "B-ORG").replace("German JJ I-NP I-MISC", "German JJ I-NP B-MISC")
CONLL2003_IOB2 = CONLL2003_IOB2.replace("Peter NNP I-NP I-PER", "Peter NNP I-NP B-PER").replace("I-LOC", "B-LOC")

EXPECTED_ENTS = [
    [("EU", "ORG"), ("German", "MISC")],
    [("Peter Blackburn", "PER"), ("Anna", "PER")],
    [("BRUSSELS", "LOC")],
]

WNUT_STYLE = "Empire\tB-facility\nState\tI-facility\nis\tO\n\t\nhi\tO\n@bob\tB-person\n\t\n"


def write(tmp_path: Path, text: str, name: str = "data.conll", encoding: str = "utf8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def ents_of(docs) -> List[List[Tuple[str, str]]]:
    return [[(ent.text, ent.label_) for ent in doc.ents] for doc in docs]


# -- reading -----------------------------------------------------------------------------


def test_conll2003_documents_sentences_and_line_numbers(tmp_path):
    sentences = list(read_conll(write(tmp_path, CONLL2003_IOB1)))
    assert [s.words for s in sentences] == [
        ("EU", "rejects", "German", "call", "."),
        ("Peter", "Blackburn", "Anna"),
        ("BRUSSELS", "1996-08-22"),
    ]
    assert sentences[0].tags == ("I-ORG", "O", "I-MISC", "O", "O")
    assert [s.line for s in sentences] == [3, 9, 15]
    # -DOCSTART- is a document boundary, never a sentence.
    assert [s.document for s in sentences] == [0, 0, 1]
    assert sentences[0].source == str(tmp_path / "data.conll")


def test_other_columns_can_be_read(tmp_path):
    sentences = list(read_conll(write(tmp_path, CONLL2003_IOB1), tag_column=1, chunk_tags=False))
    assert sentences[0].tags == ("NNP", "VBZ", "JJ", "NN", ".")
    chunks = list(read_conll(write(tmp_path, CONLL2003_IOB1), tag_column=2))
    assert chunks[0].tags == ("I-NP", "I-VP", "I-NP", "I-NP", "O")


def test_wnut_tab_separator_lines(tmp_path):
    sentences = list(read_conll(write(tmp_path, WNUT_STYLE)))
    assert [s.words for s in sentences] == [("Empire", "State", "is"), ("hi", "@bob")]
    assert [s.line for s in sentences] == [1, 5]


def test_whitespace_only_lines_and_repeated_separators_split_sentences(tmp_path):
    text = "\n\na\tO\n  \t \n\n\nb\tB-X\n \n\t\t\n"
    sentences = list(read_conll(write(tmp_path, text)))
    assert [(s.words, s.line) for s in sentences] == [(("a",), 3), (("b",), 7)]


def test_crlf_bom_and_missing_final_newline_read_like_plain_text(tmp_path):
    plain = list(read_conll(write(tmp_path, WNUT_STYLE, "plain.txt")))
    messy_text = "\ufeff" + WNUT_STYLE.rstrip("\n").replace("\n", "\r\n")
    messy = list(read_conll(write(tmp_path, messy_text, "messy.txt")))
    assert [(s.words, s.tags, s.line) for s in messy] == [(s.words, s.tags, s.line) for s in plain]
    assert messy[0].words[0] == "Empire"  # no BOM glued to the first token


def test_tab_lines_split_on_tabs_only(tmp_path):
    sentences = list(read_conll(write(tmp_path, "New York\tB-LOC\ncity \t O\t\n")))
    assert sentences[0].words == ("New York", "city")
    assert sentences[0].tags == ("B-LOC", "O")  # a trailing tab adds no empty column


@pytest.mark.parametrize(
    "text, columns, line, problem",
    [
        ("a\tO\nb\n", {}, 2, "too few columns"),
        ("a\tO\nb\t\n", {}, 2, "too few columns"),
        ("a NN O\nb O\n", {"tag_column": 2}, 2, "too few columns"),
        ("a O\n\nb B-X\nc X-Y\n", {}, 4, "Ill-formed tag 'X-Y'"),
        ("a O\nb B-\n", {}, 2, "Ill-formed tag 'B-'"),
        ("a O\nb PER\n", {}, 2, "Ill-formed tag 'PER'"),
        ("a\tO\n\n\n\tO\n", {}, 4, "empty token"),
        ("a\tNN\tO\nb\t\tO\n", {"tag_column": 1, "chunk_tags": False}, 2, "empty tag"),
    ],
)
def test_format_errors_name_file_and_line(tmp_path, text, columns, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConllFormatError) as error:
        list(read_conll(path, **columns))
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert problem in str(error.value)
    assert error.value.line == line


def test_a_line_missing_a_column_is_an_error_not_a_shifted_tag(tmp_path):
    # Line 5 lacks its NER column: read as before, its chunk tag I-NP would become an entity label.
    text = CONLL2003_IOB1.replace("German JJ I-NP I-MISC", "German JJ I-NP")
    path = write(tmp_path, text)
    with pytest.raises(ConllFormatError) as error:
        list(read_conll(path))
    assert str(error.value).startswith(f"{path}:5: 3 columns, but the file's token lines have 4 (as line 3)")
    # An extra column is as wrong as a missing one; tab-separated files count empty columns too.
    with pytest.raises(ConllFormatError, match=r":2: 3 columns, but the file's token lines have 2"):
        list(read_conll(write(tmp_path, "a\tO\nb\tX\tO\n")))


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("a\tO\n".encode() + "caf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(ConllFormatError, match=r":2: not valid UTF-8"):
        list(read_conll(path))


def test_missing_file_fails_at_call_time(tmp_path):
    missing = tmp_path / "nope.conll"
    with pytest.raises(ConllFormatError, match=rf"^{missing}:0: file not found"):
        read_conll(missing)  # no iteration needed
    with pytest.raises(ConllFormatError, match="not a file"):
        read_conll(tmp_path)


# -- Docs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["auto", "iob1"])
def test_iob1_and_iob2_input_give_identical_entities(tmp_path, scheme):
    iob1 = list(read_conll(write(tmp_path, CONLL2003_IOB1, "iob1.txt")))
    iob2 = list(read_conll(write(tmp_path, CONLL2003_IOB2, "iob2.txt")))
    assert iob1[0].tags != iob2[0].tags  # the inputs really differ
    assert ents_of(sentences_to_docs(iob1, Vocab(), scheme=scheme)) == EXPECTED_ENTS
    assert ents_of(sentences_to_docs(iob2, Vocab(), scheme="iob2")) == EXPECTED_ENTS


def test_docs_have_gold_words_and_outside_tokens(tmp_path):
    doc = sentences_to_docs(read_conll(write(tmp_path, CONLL2003_IOB2)), Vocab())[0]
    assert doc.text == "EU rejects German call ."
    assert [t.ent_iob_ for t in doc] == ["B", "O", "B", "O", "O"]  # O, not missing ("")


@pytest.mark.parametrize("spelling", [("S", "E"), ("U", "L")])
def test_bioes_input_is_detected(tmp_path, spelling):
    single, last = spelling
    text = f"Ann {single}-PER\nvisits O\nNew B-LOC\nYork {last}-LOC\n\nOslo B-LOC\nnow O\n"
    sentences = list(read_conll(write(tmp_path, text)))
    docs = sentences_to_docs(sentences, Vocab())
    assert ents_of(docs) == [[("Ann", "PER"), ("New York", "LOC")], [("Oslo", "LOC")]]


def test_span_group_tag_and_pos_targets(tmp_path):
    path = write(tmp_path, CONLL2003_IOB2)
    spans_doc = sentences_to_docs(read_conll(path), Vocab(), target="spans:sc")[0]
    assert [(s.text, s.label_) for s in spans_doc.spans["sc"]] == EXPECTED_ENTS[0]
    assert not spans_doc.ents
    tag_doc = sentences_to_docs(read_conll(path, tag_column=1, chunk_tags=False), Vocab(), target="tag")[0]
    assert [t.tag_ for t in tag_doc] == ["NNP", "VBZ", "JJ", "NN", "."]
    upos = write(tmp_path, "EU PROPN\nrejects VERB\n", "upos.txt")
    pos_doc = sentences_to_docs(read_conll(upos, chunk_tags=False), Vocab(), target="pos")[0]
    assert [t.pos_ for t in pos_doc] == ["PROPN", "VERB"]


def test_pos_target_rejects_non_universal_tags_by_line(tmp_path):
    path = write(tmp_path, "a DET\n\nEU PROPN\nrejects VBZ\n")
    with pytest.raises(ConllFormatError, match=rf"^{path}:4: 'VBZ' is not a Universal POS tag"):
        sentences_to_docs(read_conll(path, chunk_tags=False), Vocab(), target="pos")


def test_unknown_target_and_scheme_are_rejected(tmp_path):
    sentences = list(read_conll(write(tmp_path, WNUT_STYLE)))
    with pytest.raises(ValueError, match="ents, spans:KEY, tag, pos"):
        sentences_to_docs(sentences, Vocab(), target="entities")
    with pytest.raises(ValueError, match="auto, iob1, iob2, bioes"):
        sentences_to_docs(sentences, Vocab(), scheme="bilou")


def test_unvalidated_bad_chunk_tag_reports_its_sentence(tmp_path):
    sentence = ConllSentence(("a", "b"), ("O", "PER"), 7, 0, "x.conll")
    with pytest.raises(ConllFormatError, match=r"^x\.conll:7: "):
        sentences_to_docs([sentence], Vocab(), scheme="iob2")


SEGMENTS = st.lists(st.tuples(st.sampled_from(["O", "PER", "LOC"]), st.integers(1, 3)), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=4), st.sampled_from(["iob2", "bioes"]))
def test_spans_survive_file_round_trip(sentences_segments, scheme):
    """Spans written as tags of either scheme come back as the same entities (scheme detected)."""
    expected = []
    lines = []
    for segments in sentences_segments:
        spans, start = [], 0
        for label, length in segments:
            if label != "O":
                spans.append((start, start + length, label))
            start += length
        expected.append(spans)
        lines += [f"w{i}\t{tag}" for i, tag in enumerate(spans_to_tags(start, spans, scheme))] + [""]
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "\n".join(lines))
        docs = sentences_to_docs(read_conll(path), Vocab(), scheme="auto")
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs] == expected


# -- split and stats -----------------------------------------------------------------------


def test_split_indices_is_the_shared_recipe():
    train, dev, test = split_indices(20, (0.5, 0.25, 0.25), seed=3)
    expected = list(range(20))
    random.Random(3).shuffle(expected)
    assert (train, dev, test) == (expected[:10], expected[10:15], expected[15:])
    assert split_indices(20, (0.5, 0.25, 0.25), seed=4) != (train, dev, test)


def test_split_rounds_down_and_gives_the_rest_to_test():
    train, dev, test = split_indices(10, (0.75, 0.15, 0.10))
    assert (len(train), len(dev), len(test)) == (7, 1, 2)
    assert sorted(train + dev + test) == list(range(10))


@pytest.mark.parametrize(
    "fractions, message",
    [
        ((0.7, 0.3), "3 numbers"),
        ((0.8, 0.3, -0.1), "non-negative"),
        ((0.5, 0.2, 0.2), "sum to 1"),
        (("a", 0.5, 0.5), "numbers"),
    ],
)
def test_bad_fractions_are_rejected(fractions, message):
    with pytest.raises(ValueError, match=message):
        split_indices(10, fractions)
    with pytest.raises(ValueError, match=message):
        check_fractions(fractions)


def test_select_split_rejects_unknown_split():
    assert select_split(list("abcd"), "all") == list("abcd")
    with pytest.raises(ValueError, match="all, train, dev, test"):
        select_split(list("abcd"), "validation")


def test_wnut16_shared_split_numbers():
    sentences = list(read_conll(wnut16_path()))
    docs = sentences_to_docs(sentences, Vocab(), scheme="iob2")
    whole = corpus_stats(docs)
    assert (whole["docs"], whole["words"], whole["spans"]) == (2394, 46469, 1496)
    assert len(whole["spans_per_label"]) == 10
    assert list(whole["spans_per_label"].items())[:3] == [("person", 449), ("geo-loc", 276), ("other", 225)]
    train, dev, test = (select_split(docs, split) for split in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (1675, 359, 360)
    test_stats = corpus_stats(test)
    assert (test_stats["words"], test_stats["spans"]) == (7128, 214)


def test_corpus_stats_counts_and_orders_labels(tmp_path):
    docs = sentences_to_docs(read_conll(write(tmp_path, CONLL2003_IOB2)), Vocab())
    assert corpus_stats(docs) == {
        "docs": 3,
        "words": 10,
        "spans": 5,
        "spans_per_label": {"PER": 2, "LOC": 1, "MISC": 1, "ORG": 1},
    }


# -- DocBins -------------------------------------------------------------------------------


def test_convert_writes_docbins_that_round_trip(tmp_path):
    lines = []
    for i in range(20):
        lines += [f"w{i}\tB-PER", f"x{i}\tI-PER", "y\tO", ""]
    source = write(tmp_path, "\n".join(lines))
    paths = convert(source, tmp_path / "out", fractions=(0.5, 0.25, 0.25), seed=1)
    assert set(paths) == {"train", "dev", "test"}
    vocab = Vocab()
    loaded = {split: read_docbin(path, vocab) for split, path in paths.items()}
    assert [len(loaded[s]) for s in ("train", "dev", "test")] == [10, 5, 5]
    train_idx = split_indices(20, (0.5, 0.25, 0.25), seed=1)[0]
    assert [doc[0].text for doc in loaded["train"]] == [f"w{i}" for i in train_idx]
    for doc in loaded["train"] + loaded["dev"] + loaded["test"]:
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "PER")]
        assert doc.text == f"{doc[0].text} {doc[1].text} y"


def test_convert_span_group_target_round_trips(tmp_path):
    source = write(tmp_path, CONLL2003_IOB2)
    paths = convert(source, tmp_path / "out", target="spans:chunks", fractions=(1.0, 0.0, 0.0))
    docs = read_docbin(paths["train"], Vocab())
    assert sorted([(s.text, s.label_) for s in doc.spans["chunks"]] for doc in docs) == sorted(EXPECTED_ENTS)
    assert read_docbin(paths["test"], Vocab()) == []
