"""``nlp.pipe(texts, n_process=2)`` with a seqlab component: forked children get one torch thread
and give what one process gives (it hung: torch's OpenMP pool does not survive a fork)."""

import subprocess
import sys

SCRIPT = """
import json, sys
import spacy, torch
from spacy.tokens import Doc
from spacy.training import Example

torch.set_num_threads(2)  # the parent uses a pool of threads before forking
nlp = spacy.blank("en")
nlp.add_pipe("seqlab_multitask_ner", config={"model": {"backbone": {"name": sys.argv[1]}}})
reference = Doc(nlp.vocab, words=["Alice", "lives", "in", "Paris"], ents=["B-PER", "O", "O", "B-LOC"])
nlp.initialize(lambda: [Example(nlp.make_doc(reference.text), reference)])
texts = [" ".join(["Alice", str(i), "lives", "in", "Paris", "with", "Bob", "."] * (1 + i % 4)) for i in range(48)]

def ents(docs):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]

one = ents(nlp.pipe(texts, batch_size=8))
two = ents(nlp.pipe(texts, batch_size=8, n_process=2))
print(json.dumps({"equal": one == two, "n": len(two), "threads": torch.get_num_threads()}))
"""


def test_nlp_pipe_with_two_processes_gives_what_one_gives(tiny_model_dir):
    try:  # a guard: a hang fails the test instead of blocking the suite
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tiny_model_dir("bert"))], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError("nlp.pipe(n_process=2) hung") from err
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == '{"equal": true, "n": 48, "threads": 2}', result.stdout
