"""The benchmark's documents: the shared WNUT-16 test split (and train docs for ``initialize``), as words."""

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from seqlab_access import wnut16_examples


@dataclass
class Corpus:
    words: List[List[str]]
    spaces: List[List[bool]]
    texts: List[str]
    train: List[Tuple[List[str], List[bool], List[str]]]  # words, spaces, IOB2 ents: for initialize and training

    @property
    def n_words(self) -> int:
        return sum(len(w) for w in self.words)

    def head(self, n: int) -> "Corpus":
        """The first ``n`` test tweets (the split is a seeded shuffle, so they are a random sample); 0: all."""
        if not n or n >= len(self.words):
            return self
        return Corpus(self.words[:n], self.spaces[:n], self.texts[:n], self.train)


def load_corpus(n_docs: int, n_train: int) -> Corpus:
    import spacy

    nlp = spacy.blank("en")
    test = [eg.reference for eg in wnut16_examples(nlp, "test")]
    if n_docs:
        test = test[:n_docs]
    train = []
    for eg in wnut16_examples(nlp, "train", limit=n_train):
        doc = eg.reference
        tags = [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]
        train.append(([t.text for t in doc], [bool(t.whitespace_) for t in doc], tags))
    return Corpus(
        words=[[t.text for t in doc] for doc in test],
        spaces=[[bool(t.whitespace_) for t in doc] for doc in test],
        texts=[doc.text for doc in test],
        train=train,
    )


def make_docs(nlp, corpus: Corpus, indices: Optional[Sequence[int]] = None) -> list:
    from spacy.tokens import Doc

    indices = range(len(corpus.words)) if indices is None else indices
    return [Doc(nlp.vocab, words=corpus.words[i], spaces=corpus.spaces[i]) for i in indices]


def train_examples(nlp, corpus: Corpus) -> list:
    from spacy.tokens import Doc
    from spacy.training import Example

    examples = []
    for words, spaces, tags in corpus.train:
        reference = Doc(nlp.vocab, words=words, spaces=spaces, ents=tags)
        examples.append(Example(Doc(nlp.vocab, words=words, spaces=spaces), reference))
    return examples


def long_words(corpus: Corpus, n: int) -> Tuple[List[str], List[bool]]:
    """``n`` tokens: the test tweets concatenated (cycled) and cut."""
    words: List[str] = []
    spaces: List[bool] = []
    while len(words) < n:
        for w, s in zip(corpus.words, corpus.spaces):
            words.extend(w)
            spaces.extend(s[:-1] + [True])
            if len(words) >= n:
                break
    return words[:n], spaces[:n]


def batches(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
