"""Fixtures of the corpus-scale tests: one loopback Ray with 2 CPUs for the whole folder, and two saved pipelines."""

from pathlib import Path
from typing import Iterator

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

# Custom components of the fault pipeline, imported by the driver and (through settings.code) by every worker:
# it raises on the text BOOM, and on KILL it kills its own process once, when it can claim the marker file
# beside this code (a test creates it).
FAULTS_CODE = """
import os, signal
from spacy.language import Language

@Language.component("seqlab_test_faults")
def seqlab_test_faults(doc):
    if doc.text == "BOOM":
        raise ValueError("boom on purpose")
    if doc.text == "KILL":
        marker = os.path.join(os.path.dirname(__file__), "kill.marker")
        try:
            os.rename(marker, marker + ".claimed")  # atomic: only one process ever claims it
        except OSError:
            return doc
        os.kill(os.getpid(), signal.SIGKILL)
    return doc
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray with 2 CPUs on the loopback address, reused by every Ray test and stopped at the end."""
    import ray

    from spacy_seqlab.scale.engines import start_local_ray

    start_local_ray(cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def faults_code(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scale-code") / "faults.py"
    path.write_text(FAULTS_CODE, encoding="utf8")
    return path


@pytest.fixture(scope="session")
def ruler_pipeline(tmp_path_factory, faults_code) -> Path:
    """A fast pipeline: an entity ruler, then the fault component."""
    from spacy_seqlab.scale.annotator import import_code

    import_code(str(faults_code))
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PER", "pattern": "alice"}, {"label": "LOC", "pattern": "paris"}])
    nlp.add_pipe("seqlab_test_faults")
    path = tmp_path_factory.mktemp("ruler") / "pipeline"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def tagger_pipeline(tmp_path_factory, tiny_model_dir) -> Path:
    """A tiny seqlab_multitask_ner on the tiny Llama, trained a few steps so that it predicts entities."""
    nlp = spacy.blank("en")
    config = {"backbone": {"name": str(tiny_model_dir("llama")), "lora": None, "unmask": "none"}}
    nlp.add_pipe("seqlab_multitask_ner", config={"model": config})
    examples = []
    for name in ("alice", "bob", "paris", "rome"):
        words = [name, "lives", "in", "paris" if name == "rome" else "rome"]
        tags = ["B-PER" if name in ("alice", "bob") else "B-LOC", "O", "O", "B-LOC"]
        examples.append(Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=tags)))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(15):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("tagger") / "pipeline"
    nlp.to_disk(path)
    return path
