"""What lies between Docs and text for ``seqlab_llm_sft``: its settings, and the prompter that cuts
Docs into query windows, builds their prompts with demonstrations and reads the responses back.

Shared by the component (:mod:`.pipe`) and the spacy-llm task (:mod:`.spacy_llm`).
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..core.settings import check_choice, check_int, setting
from ..core.windows import plan_windows, validate_window, window_ranges
from .demonstrations import SELECTORS, DemonstrationPool
from .prompt import STRATEGIES, Prompt, build_prompt, instruction_text
from .response import ParsedResponse, parse_response


@dataclass
class SiftSettings:
    """How prompts are built, trained on and answered."""

    strategy: str = setting("mrc", "Loss: 'vanilla' (all tokens), 'src' (query response), 'mrc' (every response).")
    instruction: bool = setting(True, "Start prompts with a task description naming the labels.")
    label_definitions: Dict[str, str] = setting(
        help="Optional label → description, shown in the instruction.", factory=dict
    )
    n_demos: int = setting(2, "Demonstrations per prompt (fewer if the context budget is exceeded).")
    selector: str = setting(
        "dense", "How demonstrations are chosen: 'random', 'similar' (BM25) or 'dense' (many spans)."
    )
    max_prompt_tokens: int = setting(1024, "Context budget: demonstrations are dropped, never the query, to fit.")
    max_new_tokens: int = setting(64, "Longest response generated per query window.")
    constrained: bool = setting(False, "Allow only spans of the input, in order, and known labels while generating.")
    max_span_tokens: int = setting(8, "Constrained decoding: the longest span, in tokens.")
    window: int = setting(64, "Tokens per query; longer documents are labeled in overlapping windows.")
    stride: int = setting(48, "Tokens between window starts.")
    seed: int = setting(0, "Seed of the demonstration draws.")

    def __post_init__(self) -> None:
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("selector", self.selector, SELECTORS)
        check_int("n_demos", self.n_demos, minimum=0)
        for name in ("max_prompt_tokens", "max_new_tokens", "max_span_tokens"):
            check_int(name, getattr(self, name))
        validate_window(self.window, self.stride)
        if self.label_definitions and not self.instruction:
            raise ValueError(
                "label_definitions are shown in the instruction, which is off: set instruction = true, or "
                "label_definitions = {}"
            )


def window_doc(doc: Doc, start: int, end: int) -> Doc:
    """Tokens ``start:end`` of ``doc`` as a Doc of their own, text and tokenization only.

    ``Span.as_doc`` reads arrays and entities of the whole Doc, so calling it once per window
    made reading a long Doc quadratic in its length; this is linear in the window.
    """
    tokens = doc[start:end]
    return Doc(doc.vocab, words=[t.text for t in tokens], spaces=[bool(t.whitespace_) for t in tokens])


class SiftPrompter:
    """Everything between Docs and text: windows, demonstrations, prompts and parsing.

    Shared by the component and the spacy-llm task, so both ask and read the same way.
    """

    def __init__(
        self,
        labels: Sequence[str],
        settings: SiftSettings,
        pool: DemonstrationPool,
        responses: List[str],
        tokenizer: Any,
    ) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.pool = pool
        self.responses = responses  # the formatted response of each pool demonstration
        self.tokenizer = tokenizer
        self.instruction = instruction_text(self.labels, settings.label_definitions) if settings.instruction else None

    def windows(self, doc: Doc) -> List[Tuple[int, int]]:
        """(start, end) token ranges covering ``doc``."""
        return window_ranges(len(doc), self.settings.window, self.settings.stride)

    def prompt(self, text: str, *, response: Optional[str] = None, exclude: Optional[int] = None) -> Prompt:
        """The prompt for a query text, with demonstrations fitted to the context budget."""
        # Training varies the demonstrations; prediction keeps dense ones the same for every query
        # (a shared prompt start).
        vary = response is not None or exclude is not None
        chosen = (
            self.pool.select(text, self.settings.n_demos, self.settings.selector, exclude=exclude, vary_ties=vary)
            if len(self.pool)
            else []
        )
        eos = self.tokenizer.eos_token
        while True:
            demos = [(self.pool[i].text, self.responses[i]) for i in chosen]
            prompt = build_prompt(text, demos, instruction=self.instruction, eos=eos, query_response=response)
            if not chosen or len(self.tokenizer(prompt.text)["input_ids"]) <= self.settings.max_prompt_tokens:
                return prompt
            chosen = chosen[1:]  # the least relevant demonstration comes first

    def generation_prompts(self, doc: Doc) -> List[str]:
        """One prompt per window of ``doc``."""
        return [self.prompt(doc[s:e].text).generation_prefix for s, e in self.windows(doc)]

    def read(self, doc: Doc, responses: Sequence[str]) -> Tuple[List[Tuple[int, int, str]], List[ParsedResponse]]:
        """Spans of ``doc`` (token offsets) from its windows' responses; each span is kept from
        the window where its first token is most central."""
        plan = plan_windows([len(doc)], self.settings.window, self.settings.stride)
        spans, parsed_all = [], []
        for k, ((s, e), response) in enumerate(zip(self.windows(doc), responses)):
            parsed = parse_response(window_doc(doc, s, e), response, self.labels)
            parsed_all.append(parsed)
            spans.extend((s + a, s + b, label) for a, b, label in parsed.spans if plan.piece_window[s + a] == k)
        return spans, parsed_all
