"""Tiny random models with locally trained tokenizers, so tests never touch a hub (used by conftest's
fixtures, and importable by tests that build a variant of one)."""

from pathlib import Path

import torch

CORPUS = [
    "The quick brown fox jumps over the lazy dog in New York City.",
    "Alice met Bob at the Acme Corporation headquarters in Paris last Tuesday!",
    "can't won't shouldn't it's 3.14 $100 e-mail user@example.com #hashtag @user",
    "Ünïcödé café naïve façade Zürich São Paulo Kraków Ελληνικά Русский 中文 日本語",
    "Emoji 👩‍👩‍👧 👍🏽 🇭🇷 and RTL text: مرحبا بالعالم שלום עולם",
    "Tabs\tand\nnewlines\n\nand   multiple spaces",
] * 3

# The architecture families the backbone must support, with the tokenizer style each uses.
TINY_ARCHS = {
    "llama": ("LlamaConfig", "bytelevel"),
    "mistral": ("MistralConfig", "metaspace"),
    "qwen2": ("Qwen2Config", "bytelevel"),
    "qwen3": ("Qwen3Config", "bytelevel"),
    "bert": ("BertConfig", "wordpiece"),
}


def build_tokenizer(style: str):
    """A small fast tokenizer trained here: byte-level BPE (GPT-2/Llama-3 style), Metaspace BPE
    (SentencePiece style) or WordPiece (BERT)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if style == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(
            CORPUS, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special, show_progress=False)
        )
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        tok.decoder = decoders.WordPiece()
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    special = ["<pad>", "<s>", "</s>", "<unk>"]
    if style == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=special, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_model(arch: str, directory: Path) -> Path:
    """Save a random tiny ``arch`` model (2 layers, hidden 32) and its tokenizer into ``directory``."""
    import transformers

    config_name, style = TINY_ARCHS[arch]
    tokenizer = build_tokenizer(style)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
    )
    if arch == "bert":
        config = transformers.BertConfig(intermediate_size=64, pad_token_id=tokenizer.pad_token_id, **common)
    else:
        extra = {"sliding_window": 64} if arch == "mistral" else {}
        if arch == "qwen3":
            extra["head_dim"] = 8
        config = getattr(transformers, config_name)(
            intermediate_size=64,
            num_key_value_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=True,
            **extra,
            **common,
        )
    torch.manual_seed(0)
    model = (
        transformers.AutoModelForCausalLM.from_config(config)
        if arch != "bert"
        else transformers.AutoModel.from_config(config)
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
