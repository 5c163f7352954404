"""The registered corpus readers, resolved by name and from configs, and used for training."""

import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed, load_config_from_str, registry
from thinc.api import ConfigValidationError

from spacy_seqlab.data.readers import create_conll_corpus, create_wnut16_corpus

CONLL_NAME = "spacy_seqlab.ConllCorpus.v1"
WNUT_NAME = "spacy_seqlab.WNUT16Corpus.v1"

# Gold tokens that spaCy's English tokenizer splits differently ("don't" → "do", "n't").
TEXT = "Ann NNP B-PER\ndon't VB O\ngo VB O\n\nBob NNP B-PER\nLee NNP I-PER\nwon't MD O\n\nParis NNP B-LOC\n\n"


@pytest.fixture
def conll_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.conll"
    path.write_text(TEXT * 10, encoding="utf8")  # 30 sentences
    return path


def test_names_resolve_to_the_reader_functions():
    assert registry.readers.get(CONLL_NAME) is create_conll_corpus
    assert registry.readers.get(WNUT_NAME) is create_wnut16_corpus


def test_names_resolve_through_entry_points_without_importing_the_package():
    code = (
        "import sys; from spacy.util import registry; "
        f"assert 'spacy_seqlab.data.readers' not in sys.modules; "
        f"print(registry.readers.get({CONLL_NAME!r}).__module__, registry.readers.get({WNUT_NAME!r}).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["spacy_seqlab.data.readers", "create_wnut16_corpus"]


def test_wnut16_split_sizes_and_limit():
    nlp = spacy.blank("en")
    dev, test = (list(create_wnut16_corpus(split)(nlp)) for split in ("dev", "test"))
    assert (len(dev), len(test)) == (359, 360)
    assert sum(len(eg.reference) for eg in test) == 7128
    assert sum(len(eg.reference.ents) for eg in test) == 214
    assert (len(create_wnut16_corpus("train")), len(create_wnut16_corpus("all"))) == (1675, 2394)
    assert len(list(create_wnut16_corpus("train", limit=7)(nlp))) == 7
    # Another seed gives another split of the same sizes.
    other = list(create_wnut16_corpus("test", seed=1)(nlp))
    assert len(other) == 360 and other[0].reference.text != test[0].reference.text


def test_conll_corpus_from_config(conll_file):
    config = load_config_from_str(
        f"""
        [corpora]

        [corpora.train]
        @readers = "{CONLL_NAME}"
        path = "{conll_file}"
        split = "train"
        fractions = [0.5, 0.3, 0.2]
        seed = 1

        [corpora.test]
        @readers = "{CONLL_NAME}"
        path = "{conll_file}"
        split = "test"
        fractions = [0.5, 0.3, 0.2]
        seed = 1

        [corpora.wnut_dev]
        @readers = "{WNUT_NAME}"
        split = "dev"
        limit = 3
        """
    )
    corpora = registry.resolve(config)["corpora"]
    nlp = spacy.blank("en")
    train = list(corpora["train"](nlp))
    test = list(corpora["test"](nlp))
    assert (len(train), len(test), len(list(corpora["wnut_dev"](nlp)))) == (15, 6, 3)
    assert all(isinstance(eg, Example) for eg in train)
    train_texts = {eg.reference.text for eg in train}
    assert train_texts <= {"Ann don't go", "Bob Lee won't", "Paris"}


def test_config_arguments_are_type_checked(conll_file):
    config = load_config_from_str(f'[corpus]\n@readers = "{CONLL_NAME}"\npath = "{conll_file}"\nseed = "abc"\n')
    with pytest.raises(ConfigValidationError, match="seed"):
        registry.resolve(config)


def test_bad_settings_fail_when_the_reader_is_created(conll_file, tmp_path):
    with pytest.raises(ValueError, match="all, train, dev, test"):
        create_conll_corpus(conll_file, split="validation")
    with pytest.raises(ValueError, match="sum to 1"):
        create_conll_corpus(conll_file, fractions=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="ents, spans:KEY, tag, pos"):
        create_conll_corpus(conll_file, target="ner")
    with pytest.raises(ValueError, match="file not found"):
        create_conll_corpus(tmp_path / "missing.conll")
    with pytest.raises(ValueError, match="all, train, dev, test"):
        create_wnut16_corpus("validation")


def test_predicted_doc_uses_the_pipeline_tokenizer_unless_gold_preproc(conll_file):
    nlp = spacy.blank("en")
    raw = next(iter(create_conll_corpus(conll_file)(nlp)))
    gold = next(iter(create_conll_corpus(conll_file, gold_preproc=True)(nlp)))
    for eg in (raw, gold):
        assert [t.text for t in eg.reference] == ["Ann", "don't", "go"]
        assert [(e.text, e.label_) for e in eg.reference.ents] == [("Ann", "PER")]
        assert not eg.predicted.has_annotation("ENT_IOB")  # the gold stays out of the input
    assert [t.text for t in raw.predicted] == ["Ann", "do", "n't", "go"]
    assert [t.text for t in gold.predicted] == ["Ann", "don't", "go"]
    assert raw.get_aligned_ner() == ["U-PER", "O", "O", "O"]


def test_other_targets_and_columns(conll_file):
    nlp = spacy.blank("en")
    eg = next(iter(create_conll_corpus(conll_file, target="tag", tag_column=1, gold_preproc=True)(nlp)))
    assert [t.tag_ for t in eg.reference] == ["NNP", "VB", "VB"]
    eg = next(iter(create_conll_corpus(conll_file, target="spans:people", limit=1)(nlp)))
    assert [s.text for s in eg.reference.spans["people"]] == ["Ann"]


def test_each_call_builds_docs_with_the_callers_vocab(conll_file):
    corpus = create_conll_corpus(conll_file, split="dev")
    for nlp in (spacy.blank("en"), spacy.blank("en")):
        examples = list(corpus(nlp))
        assert len(examples) == 4
        assert all(eg.reference.vocab is nlp.vocab and eg.predicted.vocab is nlp.vocab for eg in examples)


def test_reader_feeds_spacy_ner_training(conll_file):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    corpus = create_conll_corpus(conll_file, split="train")
    optimizer = nlp.initialize(lambda: corpus(nlp))
    assert sorted(ner.labels) == ["LOC", "PER"]
    examples = list(corpus(nlp))
    losses = []
    for _ in range(15):
        step = {}
        nlp.update(examples, drop=0.0, sgd=optimizer, losses=step)
        losses.append(step["ner"])
    assert losses[-1] < losses[0] / 10
    # The gold was aligned to spaCy's own tokens ("do", "n't"), so the model learnt the data.
    predicted = [[(e.text, e.label_) for e in nlp(text).ents] for text in ("Ann don't go", "Bob Lee won't", "Paris")]
    assert predicted == [[("Ann", "PER")], [("Bob Lee", "PER")], [("Paris", "LOC")]]


def test_a_docbin_given_to_the_conll_reader_names_spacy_corpus(conll_file, tmp_path):
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = [eg.reference for eg in create_conll_corpus(conll_file, split="all")(nlp)]
    named, unnamed = tmp_path / "train.spacy", tmp_path / "train.bin"
    DocBin(docs=docs).to_disk(named)
    unnamed.write_bytes(named.read_bytes())
    for path in (named, unnamed):
        with pytest.raises(ValueError, match=rf'^{path}:0: a spaCy DocBin .*@readers = "spacy.Corpus.v1"'):
            create_conll_corpus(path)
