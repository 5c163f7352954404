"""Hugging Face layers.

* :mod:`.model`: the model every component shares (:class:`~.model.HFModel`, settings in
  :class:`~.model.ModelSettings`), built on :mod:`.loading` (hub, folder, GGUF), :mod:`.lora`,
  :mod:`.unmasking`/:mod:`.attention` (causal-mask removal) and :mod:`.artifact` (save and restore);
  :func:`~.model.hf_model_of` reaches it inside any thinc model.
* :mod:`.backbone` (``spacy_seqlab.HFBackbone.v1``): Docs → token vectors, the chain of
  :mod:`.pieces` → :mod:`.windows` → :mod:`.transformer` → :mod:`.pooling`.
* :mod:`.causal_lm` (``spacy_seqlab.CausalLM.v1``): the causal LM of generative components, and
  :mod:`.generation` (batched greedy generation).
* :mod:`.export`: :func:`~.export.load_exported`, loading a tagger written by ``spacy seqlab-export-hf``
  with plain transformers + peft (no spaCy), causal-mask removal included.
"""
