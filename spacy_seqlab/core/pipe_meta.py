"""What a component requires and assigns, declared from its settings (for ``nlp.analyze_pipes()``).

spaCy reads ``requires``/``assigns`` from the meta of a component's factory: ``nlp.add_pipe``
(and so ``spacy.load`` and ``spacy train``) stores ``type(nlp).get_factory_meta(factory)`` as the
new pipe's meta (``nlp.get_pipe_meta(name)``) right after the factory returns, and
``nlp.analyze_pipes()`` compares those lists. There is no per-instance meta, yet what a tagger
requires depends on its signals and what it assigns on its target. So the factory, before it
returns, sets its language's factory meta to a copy holding this instance's lists: ``add_pipe``
then stores that copy for this pipe alone. The generic meta (``Language.get_factory_meta``,
language ``None``) keeps the factory's static declaration.
"""

import dataclasses
from typing import Iterable, List

from spacy.language import Language
from spacy.pipe_analysis import validate_attrs

from .targets import Target


def target_assigns(target: str) -> List[str]:
    """The Doc/Token attributes a component writing to ``target`` assigns."""
    kind = Target.parse(target).kind
    if kind == "ents":
        return ["doc.ents", "token.ent_iob", "token.ent_type"]
    return {"spans": ["doc.spans"], "tag": ["token.tag"], "pos": ["token.pos"]}[kind]


def declare_pipe_attributes(
    nlp: Language, factory: str, *, requires: Iterable[str] = (), assigns: Iterable[str] = ()
) -> None:
    """Make the component ``factory`` is creating for ``nlp`` declare ``requires`` and ``assigns``.

    Call it from the factory, just before it returns the component.
    """
    requires, assigns = list(dict.fromkeys(requires)), list(dict.fromkeys(assigns))
    validate_attrs(requires + assigns)
    language = type(nlp)
    meta = dataclasses.replace(language.get_factory_meta(factory), requires=requires, assigns=assigns)
    language.set_factory_meta(factory, meta)
