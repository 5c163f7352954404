"""Early exit (``exit_layer``): the vectors are the full model's hidden state N, the layers above N never
run, and the setting works with LoRA and unmasking, survives saving and is checked on load."""

import shutil

import numpy
import pytest
import spacy
import torch

from spacy_seqlab.core.serialization import ArtifactError
from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.early_exit import exit_depth
from spacy_seqlab.hf.loading import load_model
from spacy_seqlab.hf.model import ModelSettings, hf_model_of

DECODERS = ["llama", "mistral", "qwen2", "qwen3"]
N_LAYERS = 3
TEXTS = ["The quick brown fox jumps over the lazy dog", "Alice met Bob in Paris"]
nlp = spacy.blank("en")


@pytest.fixture(scope="module")
def deeper_model_dir(tiny_model_dir, tmp_path_factory):
    """``deeper_model_dir(arch)``: the tiny model of ``arch`` with 3 random layers instead of 2."""
    import transformers

    made = {}

    def get(arch):
        if arch not in made:
            source, target = tiny_model_dir(arch), tmp_path_factory.mktemp(f"deeper-{arch}")
            config = transformers.AutoConfig.from_pretrained(source).to_dict()
            config.pop("layer_types", None)  # derived from the layer count
            config["num_hidden_layers"] = N_LAYERS
            torch.manual_seed(0)
            model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**config))
            model.save_pretrained(target)
            for name in source.iterdir():
                if "token" in name.name or name.name.startswith("special"):
                    shutil.copy(name, target / name.name)
            made[arch] = target
        return made[arch]

    return get


def _backbone(model_dir, **settings):
    backbone = build_hf_backbone(name=str(model_dir), **{"lora": None, "window": 32, "stride": 24, **settings})
    backbone.initialize()
    return backbone


def _hidden_states(model_dir, backbone, unmask="none"):
    """Every hidden state of the full model (index 0: embeddings) at the pieces the backbone reads."""
    from spacy_seqlab.hf.unmasking import apply_unmasking
    from spacy_seqlab.hf.windows import plan_chunks

    full = load_model(str(model_dir), kind="base")
    apply_unmasking(full, unmask)
    full.eval()
    batch = backbone.get_ref("pieces").predict([nlp(t) for t in TEXTS])
    (chunk,) = plan_chunks(batch, backbone.get_ref("windows").attrs["settings"])
    with torch.no_grad():
        states = full(
            input_ids=torch.as_tensor(chunk.input_ids),
            attention_mask=torch.as_tensor(chunk.attention_mask),
            output_hidden_states=True,
        ).hidden_states
    return [s.reshape(-1, s.shape[-1])[torch.as_tensor(chunk.positions)].numpy() for s in states], batch


def _count_layer_calls():
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: calls.append(module) if type(module).__name__.endswith("DecoderLayer") else None
    )
    return calls, hook


@pytest.mark.parametrize("arch", DECODERS)
@pytest.mark.parametrize("exit_layer", [1, 2, -2])
def test_exit_layer_gives_hidden_state_n_and_runs_only_n_layers(deeper_model_dir, arch, exit_layer):
    model_dir = deeper_model_dir(arch)
    backbone = _backbone(model_dir, exit_layer=exit_layer)
    expected, batch = _hidden_states(model_dir, backbone)
    depth = exit_depth(exit_layer, N_LAYERS)
    calls, hook = _count_layer_calls()
    try:
        vectors = backbone.get_ref("windows").predict(batch).vectors
    finally:
        hook.remove()
    assert len(calls) == depth < N_LAYERS  # one forward call over the batch, through the first layers only
    numpy.testing.assert_allclose(vectors, expected[depth], atol=1e-5)
    assert not numpy.allclose(vectors, expected[N_LAYERS], atol=1e-3)  # not the last layer's normed output
    assert len(hf_model_of(backbone).base_model.layers) == depth  # the upper layers' weights are gone


def test_exit_layer_with_lora_and_unmasking_adapts_only_the_layers_that_run(deeper_model_dir):
    model_dir = deeper_model_dir("llama")
    backbone = _backbone(model_dir, exit_layer=2, unmask="all", lora={"r": 4})
    expected, batch = _hidden_states(model_dir, backbone, unmask="all")
    # LoRA starts as the identity: the vectors are the unmasked model's hidden state 2.
    numpy.testing.assert_allclose(backbone.get_ref("windows").predict(batch).vectors, expected[2], atol=1e-5)
    adapted = {
        n.split(".layers.")[1].split(".")[0] for n, _ in hf_model_of(backbone).named_parameters() if "lora_" in n
    }
    assert adapted == {"0", "1"}


def test_the_full_depth_is_the_whole_model_with_its_norm(deeper_model_dir):
    model_dir = deeper_model_dir("qwen3")
    expected, batch = _hidden_states(model_dir, _backbone(model_dir))
    for exit_layer in (N_LAYERS, -1):
        vectors = _backbone(model_dir, exit_layer=exit_layer).get_ref("windows").predict(batch).vectors
        numpy.testing.assert_allclose(vectors, expected[N_LAYERS], atol=1e-5)


@pytest.mark.parametrize("lora", [None, {"r": 4}])
def test_saved_backbone_restores_with_its_exit_layer_and_refuses_another(deeper_model_dir, lora):
    model_dir = deeper_model_dir("mistral")
    settings = dict(exit_layer=-2, lora=lora, save_base=False if lora else None)
    backbone = _backbone(model_dir, **settings)
    docs = [nlp(t) for t in TEXTS]
    expected = backbone.predict(docs)
    restored = build_hf_backbone(name=str(model_dir), window=32, stride=24, **settings).from_bytes(backbone.to_bytes())
    for a, b in zip(restored.predict(docs), expected):
        numpy.testing.assert_allclose(a, b, atol=1e-6)
    other = build_hf_backbone(name=str(model_dir), window=32, stride=24, **{**settings, "exit_layer": None})
    with pytest.raises(ArtifactError, match="trained with exit_layer = -2 but the config says None"):
        other.from_bytes(backbone.to_bytes())


def test_tagger_with_repeat_and_exit_layer_round_trips_through_disk(deeper_model_dir, tmp_path):
    from spacy.tokens import Doc
    from spacy.training import Example

    tagger_nlp = spacy.blank("en")
    backbone = {"name": str(deeper_model_dir("qwen2")), "window": 32, "stride": 24, "lora": {"r": 4}}
    tagger_nlp.add_pipe(
        "seqlab_bidir_tagger", config={"model": {"backbone": {**backbone, "repeat": 2, "exit_layer": 2}}}
    )
    words = ["the", "quick", "dog", "runs"]
    gold = [Doc(tagger_nlp.vocab, words=words, ents=["O", "B-X", "I-X", "O"])] * 4
    optimizer = tagger_nlp.initialize(lambda: [Example(tagger_nlp.make_doc(d.text), d) for d in gold])
    tagger_nlp.update([Example(tagger_nlp.make_doc(d.text), d) for d in gold], sgd=optimizer)
    before = tagger_nlp.get_pipe("seqlab_bidir_tagger").model.predict([tagger_nlp.make_doc(TEXTS[0])]).tags
    tagger_nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    model = loaded.get_pipe("seqlab_bidir_tagger").model
    assert model.get_ref("backbone").get_ref("windows").attrs["settings"].repeat == 2
    assert hf_model_of(model).settings.exit_layer == 2 and len(hf_model_of(model).base_model.layers) == 2
    numpy.testing.assert_allclose(model.predict([loaded.make_doc(TEXTS[0])]).tags[0], before[0], atol=1e-6)


@pytest.mark.parametrize("exit_layer", [0, 1.5, True, "last"])
def test_bad_exit_layer_is_refused_naming_it(exit_layer):
    with pytest.raises(ValueError, match="exit_layer must be a decoder layer"):
        ModelSettings(name="x", exit_layer=exit_layer)


@pytest.mark.parametrize("exit_layer", [4, -4])
def test_exit_layer_outside_the_model_names_its_layer_count(deeper_model_dir, exit_layer):
    backbone = build_hf_backbone(name=str(deeper_model_dir("llama")), exit_layer=exit_layer)
    with pytest.raises(ValueError, match=f"exit_layer = {exit_layer} is outside the model's 3 layers"):
        backbone.initialize()
