"""7a, 7b: seconds per 1k tokens of one long document against one short one (windowed taggers)."""

from typing import Sequence

from corpus import Corpus, long_words
from measure import Bench, System


def scaling(bench: Bench, name: str, nlp, corpus: Corpus, lengths: Sequence[int], key: str) -> None:
    """Seconds per 1k tokens for one document of each length (warm-up on the second smallest)."""
    from spacy.tokens import Doc

    systems = []
    for n in lengths:
        words, spaces = long_words(corpus, n)
        systems.append(
            System(
                f"{name}_len{n}",
                f"{name}, one {n}-token doc",
                lambda docs: list(nlp.pipe(docs)),
                n,
                prepare=lambda words=words, spaces=spaces: [Doc(nlp.vocab, words=words, spaces=spaces)],
                group="scaling",
            )
        )
    bench.one_pass(systems[min(1, len(systems) - 1)], keep=False)
    bench.compare(systems, warmup=0)
    per_1k = {n: s.wall / n * 1000 for n, s in zip(lengths, systems)}
    bench.scaling[name] = {
        "seconds_per_1k_tokens": {str(n): round(v, 4) for n, v in per_1k.items()},
        "cpu_seconds_per_1k_tokens": {str(n): round(s.cpu / n * 1000, 4) for n, s in zip(lengths, systems)},
    }
    bench.measure(
        key,
        f"{name}: seconds per 1k tokens, {lengths[-1]:,} vs {lengths[0]:,}-token doc",
        per_1k[lengths[-1]] / per_1k[lengths[0]],
        "<=",
        1.5,
        "one Doc per call; flat means no growth beyond the windows' overlap (window / stride = 256 / 192 = 1.33)",
        seconds_per_1k_tokens={str(n): round(v, 4) for n, v in per_1k.items()},
        ratio_cpu=(systems[-1].cpu / lengths[-1]) / (systems[0].cpu / lengths[0]),
    )
