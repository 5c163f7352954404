"""A corpus of hostile documents: what text from the web throws at a pipeline.

``hostile_texts()`` gives (name, text) pairs; ``hostile_docs(nlp)`` adds Docs that already
carry annotations or come from another vocab, for components to overwrite or read.
"""

from typing import List, Tuple

import spacy
from spacy.tokens import Doc, Span

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Alice", "Paris", ".", ","]


def _many_tokens(n: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n))


def hostile_texts(*, long_docs: bool = True) -> List[Tuple[str, str]]:
    """(name, text) pairs; ``long_docs`` adds the 10,000- and 50,000-token documents."""
    texts = [
        ("empty", ""),
        ("whitespace", "   \n \t  "),
        ("punctuation", "!!! ... ??? ;:, --- ((( ))) \"\" '' ..."),
        ("single_char", "a"),
        ("single_punct", "?"),
        ("long_token", "x" * 5000),
        ("long_token_in_text", "before " + "ab" * 2500 + " after"),
        ("emoji_zwj", "Family 👩‍👩‍👧‍👦 and 👨🏿‍💻 coders 👍🏽👍🏻 flags 🇭🇷🇯🇵 🏳️‍🌈 done"),
        (
            "combining",
            "Cafe\u0301 nai\u0308ve Z\u0335\u0321a\u0336l\u0334g\u0337o\u0338 e\u0301\u0302\u0303\u0304 q\u0307\u0323",
        ),
        ("rtl", "مرحبا بالعالم هذا نص عربي طويل"),
        ("mixed_direction", "Alice said \u202eשלום עולם\u202c and مرحبا to Bob in Paris \u200f. 123 \u200e"),
        ("control_nul", "a\x00b \x01\x02\x03 c\x07d \x1b[31mred\x1b[0m \x7f e\x0bf\x0cg \u0085 h"),
        ("zero_width", "zero\u200bwidth\u200cjoin\u200dword \ufeffbom \u2060"),
        ("tabs_newlines", "a\t\t\tb\n\n\n\nc \r\n\r\n d\t\n\t\n e" + "\n" * 30 + "f"),
        ("newline_run", "\n" * 200),
        ("unseen_scripts", "ᚠᛇᚻ ᛒᛦᚦ ꯃꯤꯇꯩ ⴰⵣⵓⵍ 𐌰𐌱𐌲 𓀀𓀁 ሰላም ᏣᎳᎩ ꦗꦮ ⠓⠑⠇⠇⠕"),
        ("cjk_no_spaces", "東京都渋谷区で会議が開かれました今日は晴れです" * 3),
        ("private_use", "\ue000\ue001 \U000f0000 \U0010fffd"),
        ("math_symbols", "∀x∈ℝ: ∑ᵢ xᵢ² ≤ ∞ ⊕ ⊗ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚"),
        ("surrogates_removed", "ok \ud83d text \udc00 end".encode("utf-8", "replace").decode("utf-8")),
        ("normal", "Alice lives in Paris and the quick fox jumps over the lazy dog."),
    ]
    if long_docs:
        texts += [("tokens_10k", _many_tokens(10_000)), ("tokens_50k", _many_tokens(50_000))]
    return texts


def hostile_docs(nlp, *, long_docs: bool = True) -> List[Tuple[str, Doc]]:
    """(name, Doc) pairs: every hostile text as a Doc of ``nlp``, plus Docs with existing
    ``doc.ents`` and span groups (some overlapping), and Docs made with another vocab."""
    docs = [(name, nlp.make_doc(text)) for name, text in hostile_texts(long_docs=long_docs)]

    with_ents = nlp.make_doc("Alice met Bob in Paris and the dog barked .")
    with_ents.ents = [Span(with_ents, 0, 1, label="OLD"), Span(with_ents, 4, 5, label="GPE")]
    docs.append(("existing_ents", with_ents))

    with_spans = nlp.make_doc("the quick brown fox jumps over the lazy dog")
    with_spans.spans["sc"] = [Span(with_spans, 0, 4, label="A"), Span(with_spans, 2, 6, label="B")]
    with_spans.spans["oie_rel"] = [Span(with_spans, 4, 6, label="STALE")]
    docs.append(("existing_span_groups", with_spans))

    other_vocab = spacy.blank("en")
    foreign = other_vocab.make_doc("A doc from another vocab about Alice and Paris .")
    foreign.ents = [Span(foreign, 6, 7, label="FOREIGN_LABEL")]
    docs.append(("other_vocab", foreign))
    docs.append(
        (
            "other_vocab_words",
            Doc(other_vocab.vocab, words=["unseen", "ξένος", "🙂", "\x00"], spaces=[True, True, True, False]),
        )
    )
    return docs
