"""Prompts for supervised in-context fine-tuning (SIFT): instruction, demonstrations, query.

A prompt is plain text, so the same string serves training, the component's generation and
spacy-llm. Layout (``{eos}`` is the tokenizer's end-of-sequence token, which ends every
response, so generation stops there)::

    {instruction}                      (optional)

    Text: {demo text}
    Labels:
    {demo response}{eos}

    ...

    Text: {query text}
    Labels:
    {query response}{eos}             (training only; generation starts after "Labels:\\n")

Every character belongs to a *segment* with a role (instruction, input, response) and the
example it belongs to (demonstrations 0..n-1, then the query), so loss masks are derived
from the tokenizer's character offsets exactly.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy

STRATEGIES = ("vanilla", "src", "mrc")
INSTRUCTION, INPUT, RESPONSE = "instruction", "input", "response"
QUERY = -1  # example index of the query in segments


@dataclass
class Segment:
    start: int
    end: int
    role: str
    example: Optional[int]  # None: instruction; 0..n-1: demonstrations; QUERY: the query


@dataclass
class Prompt:
    """A prompt's text and its segments; ``generation_prefix`` is the text to generate from."""

    text: str
    segments: List[Segment] = field(default_factory=list)

    def add(self, text: str, role: str, example: Optional[int]) -> None:
        start = len(self.text)
        self.text += text
        if text:
            self.segments.append(Segment(start, len(self.text), role, example))

    @property
    def generation_prefix(self) -> str:
        """The prompt up to the query's response (what the model continues at inference)."""
        query_responses = [s for s in self.segments if s.role == RESPONSE and s.example == QUERY]
        return self.text[: query_responses[0].start] if query_responses else self.text


def instruction_text(labels: Sequence[str], definitions: Dict[str, str]) -> str:
    """The task description: what to find and how to answer."""
    described = ", ".join(f"{label} ({definitions[label]})" if definitions.get(label) else label for label in labels)
    return (
        "Find the spans of the following types in the text. List each span on its own line as "
        "`text | type`, in order of appearance; write (none) if there are none.\n"
        f"Types: {described}"
    )


def build_prompt(
    query_text: str,
    demos: Sequence[Tuple[str, str]],
    *,
    instruction: Optional[str],
    eos: str,
    query_response: Optional[str] = None,
) -> Prompt:
    """Lay out ``demos`` (text, response) and the query; with ``query_response`` for training."""
    prompt = Prompt("")
    if instruction:
        prompt.add(instruction, INSTRUCTION, None)
        prompt.add("\n\n", INPUT, None)
    for i, (text, response) in enumerate(demos):
        prompt.add(f"Text: {_one_line(text)}\nLabels:\n", INPUT, i)
        prompt.add(response + eos, RESPONSE, i)
        prompt.add("\n\n", INPUT, i)
    prompt.add(f"Text: {_one_line(query_text)}\nLabels:\n", INPUT, QUERY)
    if query_response is not None:
        prompt.add(query_response + eos, RESPONSE, QUERY)
    return prompt


def _one_line(text: str) -> str:
    # A newline inside a text would look like the end of the "Text:" line; the response
    # refers to spans by their exact characters, so only whitespace is replaced.
    return text.replace("\r", " ").replace("\n", " ")


def loss_mask(prompt: Prompt, offsets: numpy.ndarray, strategy: str) -> numpy.ndarray:
    """Which tokens carry the causal-LM loss, from each token's (start, end) character offsets.

    ``vanilla``: every token of the text; ``src``: the query's response; ``mrc``: every
    response (demonstrations' and the query's). Special tokens with empty offsets (BOS)
    never do. A token belongs to the segment holding its first character.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    offsets = numpy.asarray(offsets, dtype=numpy.int64).reshape(-1, 2)
    real = offsets[:, 1] > offsets[:, 0]
    if strategy == "vanilla":
        return real
    chosen = [s for s in prompt.segments if s.role == RESPONSE and (strategy == "mrc" or s.example == QUERY)]
    starts = numpy.array([s.start for s in chosen], dtype=numpy.int64)
    ends = numpy.array([s.end for s in chosen], dtype=numpy.int64)
    index = numpy.searchsorted(starts, offsets[:, 0], side="right") - 1
    inside = (
        (index >= 0) & (offsets[:, 0] < ends[numpy.maximum(index, 0)])
        if len(chosen)
        else numpy.zeros(len(offsets), bool)
    )
    return real & inside
