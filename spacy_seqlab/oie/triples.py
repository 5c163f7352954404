"""Open information extraction triples and the per-sentence merge of overlapping ones.

A :class:`Triple` is a (subject, relation, object) extraction whose parts are token ranges of
a Doc. Merging follows Dukić et al. (EACL Findings 2024, arXiv 2305.14163): within a sentence,
if no two triples cover a common token (their subject, relation and object tokens; the gaps
between them do not count), all are kept; otherwise only the *longest* triple of the sentence
is kept. "Longest" means the most tokens covered (``len(S) + len(R) + len(O)``, the paper's
"most non-O tags"), ties broken by the longer relation, then by the earlier relation.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple

TokenRange = Tuple[int, int]


@dataclass(frozen=True)
class Triple:
    """One extraction; each part is a token range ``(start, end)`` of the Doc, end exclusive."""

    subject: TokenRange
    relation: TokenRange
    object: TokenRange

    def to_dict(self) -> Dict[str, List[int]]:
        """JSON/msgpack-friendly form, as stored in ``doc._.oie_triples``."""
        return {"subject": list(self.subject), "relation": list(self.relation), "object": list(self.object)}

    @classmethod
    def from_dict(cls, data: Dict[str, Sequence[int]]) -> "Triple":
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["subject"]), tuple(data["relation"]), tuple(data["object"]))  # type: ignore[arg-type]

    def covered_length(self) -> int:
        """Tokens tagged by this triple: the paper's "non-O tags" count used to pick the longest."""
        return sum(end - start for start, end in (self.subject, self.relation, self.object))


def _longest_first_key(triple: Triple) -> Tuple[int, int, int]:
    return (triple.covered_length(), triple.relation[1] - triple.relation[0], -triple.relation[0])


def merge_overlapping(triples: Sequence[Triple]) -> List[Triple]:
    """The paper's per-sentence merge: all triples if no two cover a common token, else the longest.

    "Longest": most covered tokens (subject + relation + object), then longer relation, then
    earlier relation. The result is sorted by relation start.
    """
    covered: Set[int] = set()
    total = 0
    for triple in triples:
        for start, end in (triple.subject, triple.relation, triple.object):
            covered.update(range(start, end))
            total += end - start
    if total == len(covered):
        return sorted(triples, key=lambda triple: triple.relation)
    return [max(triples, key=_longest_first_key)]
