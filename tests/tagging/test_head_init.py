"""The tag softmax starts from the tags' prior (``head_init = "prior"``, the default) rather than uniform."""

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_seqlab.tagging.model import log_prior


def _examples(vocab):
    words = ["alice", "lives", "in", "paris", "with", "bob"]
    ents = ["B-PER", "O", "O", "B-LOC", "O", "B-PER"]
    return [Example(Doc(vocab, words=words), Doc(vocab, words=words, ents=ents)) for _ in range(3)]


def _initialized(tiny_model_dir, **model):
    nlp = spacy.blank("en")
    config = {"model": {"backbone": {"name": str(tiny_model_dir("bert"))}, **model}}
    tagger = nlp.add_pipe("seqlab_multitask_ner", config=config)
    examples = _examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    return nlp, tagger, examples


def test_log_prior_counts_gold_tags_and_ignores_missing():
    prior = log_prior([numpy.array([0, 0, 2, -1]), numpy.array([0])], 3)
    numpy.testing.assert_allclose(numpy.exp(prior), [4 / 7, 1 / 7, 2 / 7], rtol=1e-6)  # add-one smoothed


def test_default_head_starts_at_the_prior_so_the_first_loss_is_the_priors(tiny_model_dir):
    losses = {}
    for head_init in ("prior", "zero"):
        nlp, tagger, examples = _initialized(tiny_model_dir, head_init=head_init)
        output = tagger.model.get_ref("output_layer")
        assert not output.get_param("W").any()  # the weights start at zero either way
        bias = output.get_param("b")
        if head_init == "zero":
            assert not bias.any()
        else:
            tags = tagger.tagset.tags  # O 4/6, B-PER 2/6, B-LOC 1/6 of the gold tokens
            assert tags[int(bias.argmax())] == "O" and bias[tags.index("B-PER")] > bias[tags.index("B-LOC")]
            assert bias[tags.index("B-LOC")] > bias[tags.index("I-LOC")]
            # Before any update every token is predicted O, and nothing is written as an entity.
            assert not nlp(Doc(nlp.vocab, words=["bob", "lives", "in", "paris"])).ents
        step = {}
        nlp.update(examples, sgd=None, losses=step)
        losses[head_init] = step["seqlab_multitask_ner"]
    # With the weights at zero the first loss is the gold tags' cross-entropy under the starting distribution:
    # uniform over the 5 tags, or the smoothed prior (O 10/23, B-PER 7/23, B-LOC 4/23 for 9, 6 and 3 tokens).
    assert losses["zero"] == pytest.approx(18 * numpy.log(5), rel=1e-5)
    expected = -(9 * numpy.log(10 / 23) + 6 * numpy.log(7 / 23) + 3 * numpy.log(4 / 23))
    assert losses["prior"] == pytest.approx(expected, rel=1e-5)
