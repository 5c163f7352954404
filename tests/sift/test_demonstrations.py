"""Choosing SIFT demonstrations: exclusion, reproducibility, BM25 similarity, span density, speed."""

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from typing import List

import numpy
import pytest
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from spacy_seqlab.sift.demonstrations import SELECTORS, Demonstration, DemonstrationPool

TEXTS = [
    "The cat sat on the mat in Paris .",  # 0
    "Stock markets fell sharply on Monday in Tokyo .",  # 1
    "Barack Obama visited Berlin and Paris with Angela Merkel .",  # 2
    "A recipe for lemon cake with sugar and butter .",  # 3
    "The cat sat on the mat in London .",  # 4: near-duplicate of 0
    "Football fans cheered in Madrid .",  # 5
    "The  cat sat on the mat in Paris .",  # 6: duplicate of 0 up to whitespace
]
ENTITIES = [
    [("Paris", "LOC")],
    [("Tokyo", "LOC")],
    [("Barack Obama", "PER"), ("Berlin", "LOC"), ("Paris", "LOC"), ("Angela Merkel", "PER")],
    [],
    [("London", "LOC")],
    [("Madrid", "LOC")],
    [("Paris", "LOC")],
]


def char_spans(text: str, entities) -> list:
    return [(text.index(surface), text.index(surface) + len(surface), label) for surface, label in entities]


@pytest.fixture
def pool() -> DemonstrationPool:
    return DemonstrationPool(
        [Demonstration(text, char_spans(text, ents)) for text, ents in zip(TEXTS, ENTITIES)], seed=3
    )


@pytest.mark.parametrize("selector", SELECTORS)
def test_query_and_its_duplicates_are_never_selected(pool, selector):
    chosen = pool.select(TEXTS[0], n=len(pool), selector=selector, exclude=0)
    assert 0 not in chosen and 6 not in chosen  # itself, and the same text with other spacing
    assert sorted(chosen) == [1, 2, 3, 4, 5]
    # Without exclude (a query that is not in the pool), identical texts are still left out.
    assert sorted(pool.select(TEXTS[0], n=len(pool), selector=selector)) == [1, 2, 3, 4, 5]
    # exclude alone removes exactly that index for a new text.
    assert sorted(pool.select("something new", n=len(pool), selector=selector, exclude=5)) == [0, 1, 2, 3, 4, 6]


def test_random_is_reproducible_and_varies_with_query_and_seed():
    demos = [Demonstration(f"sentence number {i}", []) for i in range(200)]
    first = DemonstrationPool(demos, seed=7)
    again = DemonstrationPool(demos, seed=7)
    assert first.select("a query", 5, "random") == again.select("a query", 5, "random")
    draws = {tuple(first.select(f"query {i}", 5, "random")) for i in range(20)}
    assert len(draws) == 20  # different queries, different demonstrations
    assert first.select("a query", 5, "random") != DemonstrationPool(demos, seed=8).select("a query", 5, "random")
    # A smaller n is a prefix of a larger one: the same draw, cut shorter.
    assert first.select("a query", 10, "random")[:5] == first.select("a query", 5, "random")


def test_random_does_not_depend_on_python_hash_seed():
    code = (
        "from spacy_seqlab.sift.demonstrations import Demonstration, DemonstrationPool;"
        "pool = DemonstrationPool([Demonstration(f's{i}', []) for i in range(100)], seed=7);"
        "print(pool.select('a query', 5, 'random'), pool.select('a query', 5, 'dense'))"
    )
    demos = [Demonstration(f"s{i}", []) for i in range(100)]
    pool = DemonstrationPool(demos, seed=7)
    expected = f"{pool.select('a query', 5, 'random')} {pool.select('a query', 5, 'dense')}"
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_similar_ranks_near_duplicate_last(pool):
    ranking = pool.select("A cat sat on the mat in London today", n=len(pool), selector="similar")
    # The near-duplicate is the most relevant, so it comes last, next to the query; the
    # other mat sentences come before it and the unrelated ones first.
    assert ranking[-1] == 4
    assert set(ranking[-3:-1]) == {0, 6}
    assert set(ranking[:4]) == {1, 2, 3, 5}
    assert pool.select("lemon cake recipe", n=1, selector="similar") == [3]


def naive_bm25(texts: List[str], query: str, k1: float = 1.2, b: float = 0.75) -> List[float]:
    docs = [re.findall(r"\w+", text.lower()) for text in texts]
    avg = sum(map(len, docs)) / len(docs)
    scores = []
    for words in docs:
        tf = Counter(words)
        score = 0.0
        for term in set(re.findall(r"\w+", query.lower())):
            df = sum(term in d for d in docs)
            if not tf[term]:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(words) / avg))
        scores.append(score)
    return scores


@pytest.mark.parametrize(
    "query", ["the cat in Paris", "Paris Paris Berlin Obama", "fans markets sugar", "nothing matches xyz"]
)
def test_similar_order_is_bm25_order(pool, query):
    scores = naive_bm25(TEXTS, query)
    # Highest score first, ties by pool index; select puts the best last.
    expected = sorted(range(len(TEXTS)), key=lambda i: (-round(scores[i], 9), i))
    allowed = [i for i in expected if " ".join(TEXTS[i].split()) != " ".join(query.split())]
    assert pool.select(query, len(pool), "similar") == allowed[::-1]


def test_similar_with_no_shared_words_falls_back_to_pool_order(pool):
    assert pool.select("qwerty", 3, "similar") == [2, 1, 0]


def test_dense_without_varied_ties_gives_every_query_the_same_demos():
    pool = DemonstrationPool([Demonstration(f"text {i}", [(0, 4, "X")]) for i in range(20)], seed=3)
    chosen = {tuple(pool.select(f"query {i}", 3, "dense", vary_ties=False)) for i in range(10)}
    assert len(chosen) == 1
    (same,) = chosen
    # ... except that a query never sees itself.
    assert same[0] not in pool.select(pool[same[0]].text, 3, "dense", vary_ties=False)
    assert len({tuple(pool.select(f"query {i}", 3, "dense")) for i in range(10)}) > 1


def test_dense_prefers_many_spans_and_skips_empty_demos():
    demos = [Demonstration("none here", [])] + [Demonstration(f"one {i}", [(0, 3, "X")]) for i in range(30)]
    demos += [
        Demonstration("two spans", [(0, 3, "X"), (4, 9, "Y")]),
        Demonstration("three spans a b", [(0, 5, "X"), (6, 11, "Y"), (12, 13, "Z")]),
    ]
    pool = DemonstrationPool(demos, seed=0)
    chosen = pool.select("query", 4, "dense")
    assert chosen[-1] == 32 and chosen[-2] == 31  # most spans last
    assert all(1 <= i <= 30 for i in chosen[:2])
    # Ties among one-span demonstrations are broken differently for different queries.
    assert len({tuple(pool.select(f"query {i}", 4, "dense")[:2]) for i in range(10)}) > 1
    # The demonstration without spans only comes when nothing else is left.
    assert 0 not in pool.select("query", 32, "dense")
    assert pool.select("query", 33, "dense")[0] == 0


def test_n_edge_cases(pool):
    for selector in SELECTORS:
        assert pool.select("query", 0, selector) == []
        assert len(pool.select("query", 100, selector)) == len(pool)
        assert len(pool.select(TEXTS[0], 100, selector, exclude=0)) == len(pool) - 2
    assert DemonstrationPool([]).select("query", 3, "similar") == []
    with pytest.raises(ValueError, match="non-negative"):
        pool.select("query", -1, "random")
    with pytest.raises(ValueError, match="exclude"):
        pool.select("query", 1, "random", exclude=len(pool))


def test_bad_selector_names_the_allowed_ones(pool):
    with pytest.raises(ValueError) as err:
        pool.select("query", 2, "knn")
    assert "knn" in str(err.value) and all(name in str(err.value) for name in SELECTORS)


def test_serialization_round_trip(pool):
    data = json.loads(json.dumps(pool.to_list()))
    loaded = DemonstrationPool.from_list(data, seed=3)
    assert len(loaded) == len(pool)
    assert [loaded[i] for i in range(len(loaded))] == [pool[i] for i in range(len(pool))]
    assert loaded[2].spans[0] == (0, 12, "PER") and isinstance(loaded[2].spans[0], tuple)  # not JSON lists
    for selector in SELECTORS:
        assert loaded.select("the cat in Berlin", 4, selector) == pool.select("the cat in Berlin", 4, selector)
    assert Demonstration.from_dict(pool[2].to_dict()) == pool[2]


def test_demonstration_validation():
    with pytest.raises(ValueError, match="character range"):
        Demonstration("short", [(2, 10, "X")])
    with pytest.raises(ValueError, match="character range"):
        Demonstration("short", [(3, 3, "X")])
    with pytest.raises(ValueError, match="label"):
        Demonstration("short", [(0, 2, "")])
    with pytest.raises(ValueError, match="Demonstration"):
        Demonstration.from_dict({"spans": []})


def test_from_docs_uses_character_offsets():
    vocab = Vocab()  # spacy.blank("en") would load every installed factory: slow, and not needed here
    doc = Doc(vocab, words=["Alice", "visited", "New", "York", "."], spaces=[True, True, True, False, False])
    pool = DemonstrationPool.from_docs([doc], lambda d: [Span(d, 2, 4, label="LOC"), Span(d, 0, 1, label="PER")])
    assert pool[0].text == "Alice visited New York."
    assert pool[0].spans == [(0, 5, "PER"), (14, 22, "LOC")]


def test_ten_thousand_demonstrations_need_no_pairwise_work():
    """Building the pool and selecting stay linear in its size: no pool × pool matrix is ever made
    (traced allocations are deterministic; 10,000² floats would be 400 MB or more)."""
    import tracemalloc

    rng = numpy.random.default_rng(0)
    words = numpy.array([f"w{i}" for i in range(5000)])
    texts = [" ".join(words[rng.zipf(1.3, size=20) % 5000]) for _ in range(10_000)]
    demos = [Demonstration(text, [] if i % 3 else [(0, 2, "X")]) for i, text in enumerate(texts)]
    tracemalloc.start()
    try:
        pool = DemonstrationPool(demos, seed=0)
        for selector in SELECTORS:
            for i in range(20):
                assert len(pool.select(texts[i], 8, selector, exclude=i)) == 8
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB traced"
