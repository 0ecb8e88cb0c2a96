"""Tests for hf_rnn.tokenization: building, standardization, truncation, saving and dataset tokenization."""

import pytest
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer

from hf_rnn.tokenization import PAD_TOKEN, UNK_TOKEN, TokenizerSpec, build_tokenizer, tokenize_dataset

TEXTS = [
    "A good movie, a GOOD story!",
    "A bad movie; the story was bad.",
    "Don't watch it: the acting is terrible...",
    "The best film of the year, truly great.",
    "Great acting and a great story",
    "Terrible, terrible, terrible.",
] * 3
KINDS = ["word_level", "wordpiece", "bpe"]


def ids(tokenizer, text: str, **kwargs) -> list[int]:
    return tokenizer(text, **kwargs)["input_ids"]


@pytest.fixture(scope="module")
def word_tokenizer():
    return build_tokenizer(TokenizerSpec(max_length=8), TEXTS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_with_fixed_special_ids(kind):
    tokenizer = build_tokenizer(TokenizerSpec(kind=kind, max_tokens=80), TEXTS)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == (PAD_TOKEN, 0)
    assert (tokenizer.unk_token, tokenizer.unk_token_id) == (UNK_TOKEN, 1)
    assert 3 <= len(tokenizer) <= 80
    encoded = ids(tokenizer, "a good story")
    assert encoded and all(i > 1 for i in encoded)
    # recurrent models take no token_type_ids
    assert set(tokenizer("a good story")) == {"input_ids", "attention_mask"}


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_with_auto_tokenizer_gives_same_ids(kind, tmp_path):
    tokenizer = build_tokenizer(TokenizerSpec(kind=kind, max_tokens=80, max_length=5), TEXTS)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in ["A good movie!", "Never-seen words here", "", "great " * 20, "terrible acting 😀 ünïcödé"]:
        for truncation in (False, True):
            assert ids(loaded, text, truncation=truncation) == ids(tokenizer, text, truncation=truncation)
    assert (loaded.pad_token_id, loaded.unk_token_id, loaded.model_max_length) == (0, 1, 5)


def test_max_tokens_counts_special_tokens():
    tokenizer = build_tokenizer(TokenizerSpec(max_tokens=5), TEXTS)
    assert len(tokenizer) == 5


def test_min_frequency_drops_rare_words():
    tokenizer = build_tokenizer(TokenizerSpec(min_frequency=2), ["good good rare", "good"])
    assert "good" in tokenizer.get_vocab()
    assert "rare" not in tokenizer.get_vocab()


def test_standardization_lowercases_and_strips_punctuation(word_tokenizer):
    assert ids(word_tokenizer, "Don't; WATCH... it!") == ids(word_tokenizer, "don t watch it")
    assert ids(word_tokenizer, "story.<br /><br />The") == ids(word_tokenizer, "story br br the")
    assert not {"!", ";", "don't"} & set(word_tokenizer.get_vocab())


def test_keeping_case_and_punctuation():
    tokenizer = build_tokenizer(TokenizerSpec(lowercase=False, strip_punctuation=False), TEXTS)
    vocab = tokenizer.get_vocab()
    assert {"GOOD", "good", "!", ";"} <= set(vocab)
    assert ids(tokenizer, "GOOD!") == [vocab["GOOD"], vocab["!"]]


def test_unknown_words_map_to_unk(word_tokenizer):
    assert ids(word_tokenizer, "zyzzyva quokka Xylophone") == [1, 1, 1]


def test_empty_string_gives_no_ids(word_tokenizer):
    assert ids(word_tokenizer, "", truncation=True) == []


def test_emoji_and_mixed_scripts_do_not_crash(word_tokenizer):
    encoded = ids(word_tokenizer, "good 😀🎬 фильм 映画 فيلم great\u200b\x00 e\u0301", truncation=True)
    assert 0 < len(encoded) <= 8
    assert all(isinstance(i, int) and i >= 1 for i in encoded)


def test_truncation_to_max_length(word_tokenizer):
    huge = "great story " * 90_000  # about 1 MB
    assert len(ids(word_tokenizer, huge, truncation=True)) == 8
    assert len(ids(word_tokenizer, "great story great", truncation=True)) == 3


def test_no_max_length_keeps_every_token():
    tokenizer = build_tokenizer(TokenizerSpec(max_length=None), TEXTS)
    assert len(ids(tokenizer, "great " * 1000, truncation=True)) == 1000


def test_generator_input_and_empty_input():
    tokenizer = build_tokenizer(TokenizerSpec(), (text for text in TEXTS))
    assert "story" in tokenizer.get_vocab()
    with pytest.raises(ValueError, match="no texts"):
        build_tokenizer(TokenizerSpec(), iter([]))


def test_pretrained_tokenizer_is_loaded_not_trained(word_tokenizer, tmp_path):
    word_tokenizer.save_pretrained(tmp_path)
    loaded = build_tokenizer(TokenizerSpec(pretrained=str(tmp_path), max_length=3), [])
    assert loaded.get_vocab() == word_tokenizer.get_vocab()
    assert ids(loaded, "a good movie story", truncation=True) == ids(word_tokenizer, "a good movie")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "sentencepiece"}, "kind"),
        ({"max_tokens": 2}, "max_tokens"),
        ({"min_frequency": 0}, "min_frequency"),
        ({"max_length": 0}, "max_length"),
    ],
)
def test_spec_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TokenizerSpec(**kwargs)


def test_tokenize_dataset_adds_ids_and_lengths(word_tokenizer):
    dataset = Dataset.from_dict({"text": ["a good movie", "", "great " * 50], "label": [1, 0, 1]})
    tokenized = tokenize_dataset(dataset, word_tokenizer)
    assert sorted(tokenized.column_names) == ["input_ids", "label", "length"]
    assert tokenized["length"][:] == [3, 0, 8]
    assert [len(row) for row in tokenized["input_ids"][:]] == [3, 0, 8]
    assert tokenized["label"][:] == [1, 0, 1]

    splits = tokenize_dataset(DatasetDict({"train": dataset, "test": dataset.select([0])}), word_tokenizer)
    assert splits["test"]["input_ids"][:] == [ids(word_tokenizer, "a good movie")]


def test_tokenize_dataset_names_a_missing_column(word_tokenizer):
    dataset = Dataset.from_dict({"sentence": ["a"], "label": [0]})
    with pytest.raises(ValueError, match="'text' not found.*sentence, label"):
        tokenize_dataset(dataset, word_tokenizer)


def test_text_encoder_gives_the_ids_of_the_transformers_call():
    """The fast path (`encode_batch_fast` on a truncating copy of the backend) equals the transformers call
    `tokenizer(texts, truncation=True)` on real reviews, for a trained tokenizer and for a pretrained one with special
    tokens and padding settings."""
    from hf_rnn.data import DataSpec, load_splits
    from hf_rnn.frontends import resolve_frontend
    from hf_rnn.tokenization import TextEncoder

    splits, _ = load_splits(DataSpec(dataset="imdb", max_train_samples=400))
    texts = list(splits["train"]["text"]) + ["", "Ünïcödé — “quotes”, emoji 🎬!", "a" * 5000]
    trained = build_tokenizer(TokenizerSpec(max_length=64), texts)
    pretrained = build_tokenizer(TokenizerSpec(pretrained=resolve_frontend("minilm"), max_length=32), [])
    unlimited = build_tokenizer(TokenizerSpec(max_length=None), texts)
    for tokenizer in (trained, pretrained, unlimited):
        assert TextEncoder(tokenizer)(texts) == tokenizer(texts, truncation=True)["input_ids"]
    assert TextEncoder(trained)([None, "good"]) == [[], trained("good")["input_ids"]]
    # the backend copy is truncating; the user's tokenizer is left as it was
    assert trained.backend_tokenizer.truncation is None


def test_punctuation_split_matches_the_regex_of_earlier_versions():
    """Tokenizers saved by earlier versions split on the regex [\\p{P}$+<=>^`|~]; new ones use the Punctuation
    pre-tokenizer (no regex engine, faster): the same words on real reviews and on Unicode punctuation."""
    from tokenizers import Regex, pre_tokenizers

    from hf_rnn.data import DataSpec, load_splits

    splits, _ = load_splits(DataSpec(dataset="imdb", max_train_samples=1000))
    texts = list(splits["train"]["text"]) + ["¿Qué? «Bien» — ‘ok’… a_b $5+3<4=7>2^2`x|y~z ¡sí! 「日本」、。"]
    old = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r"[\p{P}$+<=>^`|~]"), behavior="removed"), pre_tokenizers.Whitespace()]
    )
    new = pre_tokenizers.Sequence([pre_tokenizers.Punctuation(behavior="removed"), pre_tokenizers.Whitespace()])
    for text in texts:
        assert [w for w, _ in new.pre_tokenize_str(text)] == [w for w, _ in old.pre_tokenize_str(text)], text
