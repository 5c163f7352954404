"""Shared fixtures: tiny random models with locally trained tokenizers, so tests never touch a hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402
from typing import Callable, Dict  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

from tiny_models import CORPUS, TINY_ARCHS, build_tiny_model, build_tokenizer  # noqa: E402, F401


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Callable[[str], Path]:
    """``tiny_model_dir("llama")`` → a folder with a tiny random model of that family and its tokenizer."""
    made: Dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in made:
            made[arch] = build_tiny_model(arch, tmp_path_factory.mktemp(f"tiny-{arch}"))
        return made[arch]

    return get


@pytest.fixture(scope="session")
def tokenizers_by_style() -> Dict[str, object]:
    """One locally trained fast tokenizer per style: bytelevel, metaspace, wordpiece."""
    return {style: build_tokenizer(style) for style in ("bytelevel", "metaspace", "wordpiece")}
