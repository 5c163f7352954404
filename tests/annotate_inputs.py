"""Corpus files for the annotate tests (tests/scale): short tweet-like texts and a JSONL writer."""

import json
import random
from pathlib import Path


def short_texts(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    subjects = ["alice", "bob", "paris", "rome", "the city"]
    places = ["paris", "rome", "town"]
    return [f"{rng.choice(subjects)} lives in {rng.choice(places)} {i}" for i in range(n)]


def write_jsonl(path: Path, texts: list) -> Path:
    with path.open("w", encoding="utf8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"doc{i}", "text": text}) + "\n")
    return path
