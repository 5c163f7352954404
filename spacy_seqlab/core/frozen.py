"""Frozen pipes stay as they are when a pipeline is initialized: two ``[initialize]`` callbacks.

``spacy train`` leaves ``[training] frozen_components`` out of ``nlp.initialize``, but
``spacy debug data`` (and a plain ``nlp.initialize()``) initializes every pipe: a frozen
``attribute_ruler`` sourced from ``en_core_web_sm`` loses its patterns, a frozen tagger or
parser its weights, and a tagger reading their annotations as signals gets none. With::

    [initialize.before_init]
    @callbacks = "spacy_seqlab.skip_frozen_components.v1"

    [initialize.after_init]
    @callbacks = "spacy_seqlab.restore_frozen_components.v1"

the frozen pipes are disabled for the initialization and enabled again after it, so they are
never changed, whichever command initializes the pipeline. Pipes after them still read their
annotations (the tagger runs every upstream pipe, disabled ones included, on its sample).
"""

from typing import Callable, List
from weakref import WeakKeyDictionary

from spacy.language import Language
from spacy.util import registry

# The pipes each nlp's before_init disabled, for its after_init to enable again.
_SKIPPED: "WeakKeyDictionary[Language, List[str]]" = WeakKeyDictionary()


def skip_frozen_components(nlp: Language) -> Language:
    """Disable the enabled ``[training] frozen_components`` of ``nlp`` (``Language.initialize`` skips them)."""
    frozen = nlp.config["training"].get("frozen_components") or []
    missing = [name for name in frozen if name not in nlp.component_names]
    if missing:
        raise ValueError(
            f"[training] frozen_components names {missing}, which the pipeline does not have "
            f"(its components: {nlp.component_names})"
        )
    skipped = [name for name in frozen if name in nlp.pipe_names]
    for name in skipped:
        nlp.disable_pipe(name)
    _SKIPPED[nlp] = _SKIPPED.get(nlp, []) + skipped
    return nlp


def restore_frozen_components(nlp: Language) -> Language:
    """Enable again what :func:`skip_frozen_components` disabled in ``nlp``."""
    for name in _SKIPPED.pop(nlp, []):
        nlp.enable_pipe(name)
    return nlp


@registry.callbacks("spacy_seqlab.skip_frozen_components.v1")
def create_skip_frozen_components() -> Callable[[Language], Language]:
    """``[initialize.before_init]``: leave the frozen components out of the initialization."""
    return skip_frozen_components


@registry.callbacks("spacy_seqlab.restore_frozen_components.v1")
def create_restore_frozen_components() -> Callable[[Language], Language]:
    """``[initialize.after_init]``: enable the components ``skip_frozen_components`` disabled."""
    return restore_frozen_components
