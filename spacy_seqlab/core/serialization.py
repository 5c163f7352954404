"""Safe serialization of torch state and tokenizer files: safetensors and msgpack, never pickle.

Used by the torch backbone's thinc ``PyTorchWrapper_v3`` (de)serialization callbacks and by
every component's saved files (checksums), so that loading a pipeline never unpickles anything
from the artifact.
"""

import hashlib
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Union

import srsly
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

FORMAT_VERSION = 1


CHECKSUMS_FILE = "checksums.json"
CHECKSUMS_KEY = "checksums"
# Set to 1 to load component files that carry no checksums (saved before they existed, or stripped):
# only then are they read unverified.
ALLOW_UNVERIFIED_ENV = "SPACY_SEQLAB_ALLOW_UNVERIFIED"
# What to do about a file that is truncated, corrupted or not what it should be.
REPAIR_HINT = (
    "copy the pipeline again from where it was saved (or reinstall its package), "
    "or re-save it from a working copy with nlp.to_disk"
)


class ArtifactError(ValueError):
    """A saved component cannot be restored: truncated, corrupted, or made for something else."""


class BaseModelUnavailableError(ArtifactError):
    """An adapter-only artifact's base model cannot be loaded from where it was recorded."""


def sha256_of(data: Union[bytes, str]) -> str:
    return hashlib.sha256(data.encode("utf8") if isinstance(data, str) else bytes(data)).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _excluded(name: str, exclude: Iterable[str]) -> bool:
    return name.split(".")[0] in set(exclude)


def write_checksums(path: Path) -> None:
    """Record the SHA-256 of every file in a component's directory (``checksums.json``)."""
    path = Path(path)
    files = {p.name: _sha256_file(p) for p in sorted(path.iterdir()) if p.is_file() and p.name != CHECKSUMS_FILE}
    srsly.write_json(path / CHECKSUMS_FILE, {"sha256": files})


def unverified_allowed() -> bool:
    """Whether the user opted out of verification (``SPACY_SEQLAB_ALLOW_UNVERIFIED=1``)."""
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in ("1", "true", "yes")


def _refuse_unverified(what: str) -> None:
    if not unverified_allowed():
        raise ArtifactError(
            f"{what} has no checksums, so its files cannot be verified (saved by an older spacy-seqlab, or its "
            f"checksums were removed); re-save it from a trusted copy with nlp.to_disk, which writes them, or set "
            f"the environment variable {ALLOW_UNVERIFIED_ENV}=1 to load it unverified"
        )


def verify_checksums(path: Path, exclude: Iterable[str] = ()) -> None:
    """Check the files of a component's directory against ``checksums.json``: a missing,
    truncated or altered file raises an :class:`ArtifactError` naming it. A directory without
    ``checksums.json`` is refused, unless ``SPACY_SEQLAB_ALLOW_UNVERIFIED=1``."""
    path = Path(path)
    record = path / CHECKSUMS_FILE
    if not record.exists():
        _refuse_unverified(f"{path} ({CHECKSUMS_FILE} is missing)")
        return
    try:
        recorded = srsly.read_json(record)["sha256"]
        assert isinstance(recorded, dict) and all(isinstance(v, str) for v in recorded.values())
    except Exception as err:
        raise ArtifactError(f"{record} is damaged ({type(err).__name__}: {err}); {REPAIR_HINT}") from err
    for name, digest in recorded.items():
        if _excluded(name, exclude):
            continue
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{file} is missing; {REPAIR_HINT}")
        if _sha256_file(file) != digest:
            raise ArtifactError(
                f"{file} is not the file saved with this component: its checksum differs from the one recorded when it "
                f"was saved (truncated, corrupted, or replaced by another pipeline's file); {REPAIR_HINT}"
            )


def add_bytes_checksums(msg: Dict[str, Any]) -> Dict[str, Any]:
    """``msg`` (a component's bytes, as a dict) with the SHA-256 of each bytes or str entry."""
    msg[CHECKSUMS_KEY] = {key: sha256_of(value) for key, value in msg.items() if isinstance(value, (bytes, str))}
    return msg


def verify_bytes_checksums(msg: Mapping[str, Any], exclude: Iterable[str] = ()) -> None:
    """Inverse of :func:`add_bytes_checksums`; bytes without checksums are refused, unless
    ``SPACY_SEQLAB_ALLOW_UNVERIFIED=1``."""
    recorded = msg.get(CHECKSUMS_KEY)
    if recorded is None:
        _refuse_unverified(f"the saved bytes (no {CHECKSUMS_KEY!r} entry)")
        return
    if not isinstance(recorded, dict):
        raise ArtifactError(f"the checksums of the saved bytes are damaged; {REPAIR_HINT}")
    for key, digest in recorded.items():
        if _excluded(key, exclude):
            continue
        if key not in msg:
            raise ArtifactError(f"the saved bytes lack their {key!r} entry; {REPAIR_HINT}")
        if sha256_of(msg[key]) != digest:
            raise ArtifactError(
                f"the {key!r} entry of the saved bytes is not the one saved with this component (checksum mismatch: "
                f"truncated, corrupted or replaced); {REPAIR_HINT}"
            )


def state_to_bytes(state: Dict[str, torch.Tensor]) -> bytes:
    """A state dict as safetensors bytes; tensors sharing storage (tied weights) are stored once each."""
    seen: Dict[tuple, str] = {}
    tensors: Dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.device.type)
        # safetensors refuses shared storage: copy the second and later aliases.
        tensors[name] = tensor.detach().clone().contiguous() if key in seen else tensor.detach().contiguous()
        seen.setdefault(key, name)
    return safetensors_save({name: t.cpu() for name, t in tensors.items()})


def state_from_bytes(data: bytes) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`state_to_bytes`, with a clear error for damaged data."""
    try:
        return safetensors_load(bytes(data))
    except Exception as err:  # safetensors raises its own error types
        raise ArtifactError(f"Saved weights are damaged or not safetensors data ({err}); re-save the pipeline") from err


def directory_to_files(path: Path) -> Dict[str, bytes]:
    """Every regular file directly in ``path`` (tokenizer and config files), by name."""
    return {p.name: p.read_bytes() for p in sorted(Path(path).iterdir()) if p.is_file()}


def files_to_directory(files: Dict[str, bytes], path: Path) -> Path:
    """Write files from :func:`directory_to_files` into ``path``; names must be plain file names."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise ArtifactError(f"Refusing to write file {name!r} from a saved pipeline: not a plain file name")
        (path / name).write_bytes(data)
    return path


def pack(kind: str, payload: Dict[str, Any]) -> bytes:
    """msgpack ``payload`` with a header naming what it is and the format version."""
    return srsly.msgpack_dumps({"kind": kind, "format": FORMAT_VERSION, **payload})


def unpack(kind: str, data: bytes) -> Dict[str, Any]:
    """Inverse of :func:`pack`, checking the header."""
    try:
        msg = srsly.msgpack_loads(data)
    except Exception as err:
        raise ArtifactError(
            f"Saved {kind} is truncated or corrupted ({err}); re-save or re-train the pipeline"
        ) from err
    if not isinstance(msg, dict) or msg.get("kind") != kind:
        found = msg.get("kind") if isinstance(msg, dict) else type(msg).__name__
        raise ArtifactError(f"Expected saved {kind}, found {found!r}: the pipeline's files do not match its config")
    if msg.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"Saved {kind} has format {msg.get('format')}, this spacy-seqlab reads {FORMAT_VERSION}")
    return msg
