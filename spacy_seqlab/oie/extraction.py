"""Rule-based open information extraction over spaCy's dependency parse.

It supplies the auxiliary relation signal of Dukić et al. (EACL Findings 2024, arXiv 2305.14163),
who tagged the relation spans of OIE triples and trained a tagger on them next to the main task.
The paper used MinIE; these rules are a small, domain-independent substitute that needs no
trained weights beyond a parser. They target the ClearNLP-style labels of spaCy's English
pipelines (``nsubj``, ``dobj``, ``prep``/``pobj``, ``attr``, ``auxpass``, ``prt`` ...).

Rules, per sentence and per predicate (a VERB, or an AUX that is not itself an auxiliary):

* **Subject**: the predicate's ``nsubj``/``nsubjpass``/``csubj``/``csubjpass`` subtree. A
  conjoined verb without a subject inherits the subject of the verb it is conjoined to; a
  relative clause whose subject is a relative pronoun ("which", "who", "that") takes the noun
  it modifies, without the clause. A wh-word subject outside a relative clause ("Who founded
  Acme?") is a question and gives no triple.
* **Relation**: the contiguous span from the first to the last of the predicate and its
  ``aux``/``auxpass``/``neg`` children, plus ``prt``/``neg`` tokens right after it ("has been
  slowly expanding", "did not give up"). The object choice may extend it (below).
* **Object**, the first of these candidates that satisfies the constraints:

  1. copula + ``attr``/``acomp`` with a preposition right after it: the relation runs to that
     preposition and the object is its ``pobj`` ("is the capital of" France, "is proud of" ...);
  2. a direct object: ``dobj``, else ``attr``, ``oprd``, ``acomp``, ``dative`` (its subtree).
     Conjoined objects stay one span ("apples and pears"), because separate triples would share
     subject and relation and so overlap;
  3. an ``xcomp`` verb right after the relation (only its ``to``/auxiliaries between): the
     relation runs through it and the object is found for it by rules 2-4 ("wants to buy" a
     house, "started to work at" Google);
  4. a ``prep``/``agent`` child with a ``pobj``, with only adverbs between the relation and the
     preposition: the preposition joins the relation ("moved to", "was founded by");
  5. the ``xcomp`` clause itself ("wants" / "to buy a house").

  So a relation longer than ``max_relation_length`` falls back to a later, shorter candidate
  where one exists (rule 1 → the bare copula with the whole ``attr`` phrase as object), and the
  predicate gives no triple where none does.

Constraints on every triple, as the paper applied to its OIE output: subject, relation and
object are all present, contiguous (spans are subtrees trimmed to a contiguous range), in token
order subject < relation < object without overlap, and the relation is at most
``max_relation_length`` tokens.

The triples of a sentence are then merged as described in :mod:`spacy_seqlab.oie.triples`.
"""

from typing import Any, Callable, Iterator, List, Optional, Tuple

from spacy.tokens import Doc, Span, Token
from spacy.util import get_installed_models, get_package_path, load_meta

from .triples import TokenRange, Triple, merge_overlapping

SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "csubj", "csubjpass"})
# Children that belong to the verb group: "has been", "was", "did not", "to" (infinitive).
AUXILIARY_DEPS = frozenset({"aux", "auxpass", "neg"})
# Children that may follow the verb inside the relation: "give up", "is not".
TRAILING_RELATION_DEPS = frozenset({"prt", "neg"})
# In preference order: the first present child is the object.
DIRECT_OBJECT_DEPS = ("dobj", "attr", "oprd", "acomp", "dative")
COPULA_COMPLEMENT_DEPS = frozenset({"attr", "acomp"})
PREPOSITION_DEPS = frozenset({"prep", "agent"})
WH_TAGS = frozenset({"WP", "WDT", "WP$"})


# ----------------------------------------------------------------------------------------------
# Settings and input checks


def validate_max_relation_length(max_relation_length: Any) -> int:
    """Return ``max_relation_length`` if it is an int >= 1, else raise a ValueError naming it."""
    if isinstance(max_relation_length, bool) or not isinstance(max_relation_length, int) or max_relation_length < 1:
        raise ValueError(f"seqlab_oie: max_relation_length must be an integer >= 1, got {max_relation_length!r}")
    return max_relation_length


def _is_blank(doc: Doc) -> bool:
    """An empty or whitespace-only Doc: nothing to extract, parsed or not."""
    return all(token.is_space for token in doc)


def _installed_pipelines_with_parser() -> List[str]:
    """Installed spaCy pipeline packages whose pipeline has a parser, for error messages."""
    found = []
    for name in get_installed_models():
        try:
            has_parser = "parser" in load_meta(get_package_path(name) / "meta.json").get("pipeline", ())
        except Exception:  # a package whose meta cannot be read is simply not suggested
            continue
        if has_parser:
            found.append(name)
    return sorted(found)


def _how_to_add_a_parser() -> str:
    """How to put a tagger and parser before seqlab_oie, naming the installed pipelines that have one."""
    how = (
        "source the components from a pipeline with a tagger and parser, e.g. en_core_web_sm: for name in "
        "('tok2vec', 'tagger', 'attribute_ruler', 'parser'): "
        "nlp.add_pipe(name, source=spacy.load('en_core_web_sm'), before='seqlab_oie'), or start from that pipeline"
    )
    installed = _installed_pipelines_with_parser()
    if installed:
        return f"{how}; installed pipelines with a parser: {', '.join(installed)}"
    return f"{how}; no installed pipeline has a parser: install one, e.g. python -m spacy download en_core_web_sm"


def _require_annotations(doc: Doc) -> None:
    """Raise a ValueError naming the missing component if the rules' inputs are absent."""
    if not doc.has_annotation("DEP"):
        raise ValueError(
            "seqlab_oie needs a dependency parse (token.dep, token.head) but this Doc has none: "
            f"add a parser before it: {_how_to_add_a_parser()}"
        )
    if not doc.has_annotation("POS"):
        raise ValueError(
            "seqlab_oie needs coarse POS tags (token.pos) to find verbs but this Doc has none: "
            f"add a tagger and attribute_ruler (or a morphologizer) before it: {_how_to_add_a_parser()}"
        )


# ----------------------------------------------------------------------------------------------
# Subjects


def _is_predicate(token: Token) -> bool:
    """A verb, or a copula/AUX heading its clause (not one that merely helps another verb)."""
    return token.pos_ == "VERB" or (token.pos_ == "AUX" and token.dep_ not in AUXILIARY_DEPS)


def _own_subject(predicate: Token) -> Optional[Token]:
    return next((child for child in predicate.children if child.dep_ in SUBJECT_DEPS), None)


def _is_relative_pronoun(token: Token) -> bool:
    return token.tag_ in WH_TAGS or token.lower_ == "that"


def _subtree_before(token: Token, limit: int) -> Optional[TokenRange]:
    """The token's subtree as a contiguous range, cut off at ``limit`` (where the relation begins)."""
    if token.i >= limit:
        return None
    return token.left_edge.i, min(token.right_edge.i + 1, limit)


def find_subject(predicate: Token, relation_start: int) -> Optional[TokenRange]:
    """The subject span of ``predicate``, ending before ``relation_start``; None if there is none.

    Relative clauses with a relative-pronoun subject take the modified noun (without the clause),
    conjoined verbs inherit the subject of their head, and wh-subjects (questions) give None.
    """
    subject = _own_subject(predicate)
    if subject is not None:
        if predicate.dep_ == "relcl" and _is_relative_pronoun(subject):
            noun = predicate.head
            # The noun phrase up to the noun itself: the clause after it is not the subject.
            return _subtree_before(noun, min(noun.i + 1, relation_start)) if noun.i < subject.i else None
        if subject.tag_ in WH_TAGS:
            return None
        return _subtree_before(subject, relation_start)
    # Follow a chain of conjoined verbs ("founded Acme and sold it") to the one with a subject.
    conjoined_head = predicate
    while conjoined_head.dep_ == "conj" and conjoined_head.head.i != conjoined_head.i:
        conjoined_head = conjoined_head.head
        if not _is_predicate(conjoined_head):
            return None
        subject = _own_subject(conjoined_head)
        if subject is not None:
            return None if subject.tag_ in WH_TAGS else _subtree_before(subject, relation_start)
    return None


# ----------------------------------------------------------------------------------------------
# Relations and objects


def find_verb_group(predicate: Token) -> TokenRange:
    """The predicate with its auxiliaries and negation, plus particles/negation directly after it."""
    auxiliaries = [child.i for child in predicate.children if child.dep_ in AUXILIARY_DEPS and child.i < predicate.i]
    start = min(auxiliaries, default=predicate.i)
    end = predicate.i + 1
    trailing = {
        child.i for child in predicate.children if child.dep_ in TRAILING_RELATION_DEPS and child.i > predicate.i
    }
    # Only an unbroken run: a particle after the object ("looked the word up") stays out.
    while end in trailing:
        end += 1
    return start, end


def _only_adverbs_between(doc: Doc, start: int, end: int) -> bool:
    return all(doc[i].pos_ in ("ADV", "PART") for i in range(start, end))


def _object_after(token: Token, relation_end: int) -> Optional[TokenRange]:
    """The token's subtree, trimmed to start after the relation; None if the token is inside it."""
    if token.i < relation_end:
        return None
    return max(token.left_edge.i, relation_end), token.right_edge.i + 1


def _prepositional_object(preposition: Token) -> Optional[Token]:
    return next((child for child in preposition.rights if child.dep_ == "pobj"), None)


def find_copula_with_preposition(predicate: Token, relation: TokenRange) -> Iterator[Tuple[TokenRange, TokenRange]]:
    """Rule 1: "is the capital of" + France: the copula complement up to its preposition joins the relation."""
    for complement in predicate.rights:
        if complement.dep_ not in COPULA_COMPLEMENT_DEPS or complement.left_edge.i != relation[1]:
            continue
        preposition = next((child for child in complement.rights if child.dep_ == "prep"), None)
        # The preposition must follow the complement head directly, so the relation holds only
        # the complement's own modifiers ("the largest", "proud") and nothing after the head.
        if preposition is None or preposition.i != complement.i + 1:
            continue
        yield from _through_preposition(relation, preposition)


def find_direct_object(predicate: Token, relation: TokenRange) -> Iterator[Tuple[TokenRange, TokenRange]]:
    """Rule 2: the first ``dobj``/``attr``/``oprd``/``acomp``/``dative`` child after the relation."""
    for dep in DIRECT_OBJECT_DEPS:
        for child in predicate.rights:
            if child.dep_ == dep:
                obj = _object_after(child, relation[1])
                if obj is not None:
                    yield relation, obj
                    return


def find_prepositional_object(predicate: Token, relation: TokenRange) -> Iterator[Tuple[TokenRange, TokenRange]]:
    """Rule 4: "moved to" + Berlin, "was founded by" + Steve Jobs: the preposition joins the relation."""
    doc = predicate.doc
    for preposition in predicate.rights:
        if preposition.dep_ not in PREPOSITION_DEPS or preposition.i < relation[1]:
            continue
        if not _only_adverbs_between(doc, relation[1], preposition.i):
            continue
        yield from _through_preposition(relation, preposition)


def _through_preposition(relation: TokenRange, preposition: Token) -> Iterator[Tuple[TokenRange, TokenRange]]:
    """The relation extended up to and including ``preposition``, with the preposition's object."""
    pobj = _prepositional_object(preposition)
    if pobj is not None:
        extended = (relation[0], preposition.i + 1)
        obj = _object_after(pobj, extended[1])
        if obj is not None:
            yield extended, obj


def _open_complement(predicate: Token) -> Optional[Token]:
    return next((child for child in predicate.rights if child.dep_ == "xcomp" and child.pos_ in ("VERB", "AUX")), None)


def find_open_complement_objects(predicate: Token, relation: TokenRange) -> Iterator[Tuple[TokenRange, TokenRange]]:
    """Rule 3: "wants to buy" + a house: an adjacent ``xcomp`` verb joins the relation, its object is the object."""
    complement = _open_complement(predicate)
    if complement is None:
        return
    complement_group = find_verb_group(complement)
    # Adjacent: the complement's verb group ("to buy") starts right where the relation ends.
    if complement_group[0] != relation[1]:
        return
    chained = (relation[0], complement_group[1])
    yield from find_direct_object(complement, chained)
    yield from find_open_complement_objects(complement, chained)
    yield from find_prepositional_object(complement, chained)


def find_open_complement_clause(predicate: Token, relation: TokenRange) -> Iterator[Tuple[TokenRange, TokenRange]]:
    """Rule 5: "wants" + "to buy a house": the ``xcomp`` clause is the object."""
    complement = _open_complement(predicate)
    if complement is not None:
        obj = _object_after(complement, relation[1])
        if obj is not None:
            yield relation, obj


OBJECT_RULES: Tuple[Callable[[Token, TokenRange], Iterator[Tuple[TokenRange, TokenRange]]], ...] = (
    find_copula_with_preposition,
    find_direct_object,
    find_open_complement_objects,
    find_prepositional_object,
    find_open_complement_clause,
)


def _is_valid(subject: TokenRange, relation: TokenRange, obj: TokenRange, max_relation_length: int) -> bool:
    """The paper's constraints: non-empty, S < R < O without overlap, relation within the cap."""
    return (
        subject[0] < subject[1] <= relation[0] < relation[1] <= obj[0] < obj[1]
        and relation[1] - relation[0] <= max_relation_length
    )


def find_predicate_triple(predicate: Token, max_relation_length: int) -> Optional[Triple]:
    """The triple of one predicate: its subject with the first valid (relation, object) candidate."""
    verb_group = find_verb_group(predicate)
    subject = find_subject(predicate, verb_group[0])
    if subject is None:
        return None
    for rule in OBJECT_RULES:
        for relation, obj in rule(predicate, verb_group):
            if _is_valid(subject, relation, obj, max_relation_length):
                return Triple(subject, relation, obj)
    return None


# ----------------------------------------------------------------------------------------------
# Sentences and documents


def extract_sentence_triples(sentence: Span, max_relation_length: int = 5) -> List[Triple]:
    """The merged triples of one parsed sentence (token offsets are Doc offsets)."""
    candidates = []
    for token in sentence:
        if _is_predicate(token):
            triple = find_predicate_triple(token, max_relation_length)
            if triple is not None:
                candidates.append(triple)
    return merge_overlapping(candidates) if candidates else []


def extract_triples(doc: Doc, max_relation_length: int = 5) -> List[Triple]:
    """(subject, relation, object) triples of a parsed Doc, in token order; see the module docstring.

    Raises ValueError if the Doc has tokens but no dependency parse; an empty or whitespace-only
    Doc gives ``[]``.
    """
    validate_max_relation_length(max_relation_length)
    if _is_blank(doc):
        return []
    _require_annotations(doc)
    triples: List[Triple] = []
    for sentence in doc.sents:
        triples.extend(extract_sentence_triples(sentence, max_relation_length))
    return triples
