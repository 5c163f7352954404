"""What lies between Docs and text for ``seqlab_llm_sft``: its settings, and the prompter that cuts
Docs into query windows, builds their prompts with demonstrations and reads the responses back.

Shared by the component (:mod:`.pipe`) and the spacy-llm task (:mod:`.spacy_llm`).
"""

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from ..core.settings import check_choice, check_int, setting
from ..core.windows import plan_windows, validate_window, window_ranges
from .demonstrations import SELECTORS, DemonstrationPool
from .prompt import STRATEGIES, Prompt, build_prompt, instruction_text
from .response import ParsedResponse, parse_response

logger = logging.getLogger("spacy_seqlab")

# A query window: its token range and the planned window (of window/stride) it was cut from.
QueryWindow = Tuple[int, int, int]


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
        max_positions: Optional[int] = None,
    ) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.pool = pool
        self.responses = responses  # the formatted response of each pool demonstration
        self.tokenizer = tokenizer
        self.instruction = instruction_text(self.labels, settings.label_definitions) if settings.instruction else None
        # The longest prompt, in the model's tokens: the setting, and room for the response in the model's positions.
        self.budget = settings.max_prompt_tokens
        if max_positions:
            self.budget = max(1, min(self.budget, max_positions - settings.max_new_tokens))

    def windows(self, doc: Doc) -> List[Tuple[int, int]]:
        """(start, end) token ranges covering ``doc``, each short enough for the prompt budget."""
        return [(s, e) for s, e, _ in self.query_windows(doc)]

    def query_windows(self, doc: Doc, *, warn: bool = True) -> List[QueryWindow]:
        """The windows of ``window``/``stride`` tokens over ``doc``, a window whose bare prompt (no
        demonstrations) exceeds :attr:`budget` split in halves until each fits.

        A single token that does not fit alone is left out, with a warning (``warn``) that names
        the Doc: it is never sent to the model past its positions.
        """
        fitted: List[QueryWindow] = []
        left_out = set()
        for k, (start, end) in enumerate(window_ranges(len(doc), self.settings.window, self.settings.stride)):
            pending = [(start, end)]
            while pending:  # a loop per split, not per token
                s, e = pending.pop()
                if self._bare_prompt_tokens(doc[s:e].text) <= self.budget:
                    fitted.append((s, e, k))
                elif e - s == 1:
                    left_out.add(s)
                else:
                    middle = (s + e) // 2
                    pending.extend([(middle, e), (s, middle)])  # the first half next: windows stay in order
        if left_out and warn:
            longest = max(len(doc[i].text) for i in left_out)
            logger.warning(
                "%d token(s) of a doc starting %r (the longest %d characters) are too long alone for a prompt of "
                "%d tokens (max_prompt_tokens, or the model's positions less max_new_tokens): left unlabeled",
                len(left_out),
                doc.text[:50],
                longest,
                self.budget,
            )
        return fitted

    def _bare_prompt_tokens(self, text: str) -> int:
        prompt = build_prompt(text, [], instruction=self.instruction, eos=self.tokenizer.eos_token)
        return len(self.tokenizer(prompt.text)["input_ids"])

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
            if not chosen or len(self.tokenizer(prompt.text)["input_ids"]) <= self.budget:
                return prompt
            chosen = chosen[1:]  # the least relevant demonstration comes first

    def generation_prompts(self, doc: Doc) -> List[str]:
        """One prompt per window of ``doc``."""
        return [self.prompt(doc[s:e].text).generation_prefix for s, e in self.windows(doc)]

    def read(
        self, doc: Doc, responses: Sequence[str], windows: Optional[List[QueryWindow]] = None
    ) -> Tuple[List[Tuple[int, int, str]], List[ParsedResponse]]:
        """Spans of ``doc`` (token offsets) from the responses to its :meth:`query_windows`; each
        span is kept from the planned window where its first token is most central."""
        plan = plan_windows([len(doc)], self.settings.window, self.settings.stride)
        if windows is None:
            windows = self.query_windows(doc, warn=False)
        spans, parsed_all = [], []
        for (s, e, k), response in zip(windows, responses):
            parsed = parse_response(window_doc(doc, s, e), response, self.labels)
            parsed_all.append(parsed)
            spans.extend((s + a, s + b, label) for a, b, label in parsed.spans if plan.piece_window[s + a] == k)
        return spans, parsed_all
