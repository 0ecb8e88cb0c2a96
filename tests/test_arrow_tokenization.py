"""Tests for hf_rnn.arrow_tokenization: the Arrow word-level path gives exactly the ids of the tokenizers pipeline."""

import random

import numpy as np
import pyarrow as pa
import pytest
from datasets import Dataset

from hf_rnn.arrow_tokenization import ArrowWordLevel
from hf_rnn.data import DataSpec, load_splits
from hf_rnn.tokenization import TextEncoder, TokenizerSpec, build_tokenizer, tokenize_dataset

# every standardization a word-level recipe can ask for, and both truncation sides
SPECS = [
    TokenizerSpec(max_length=64),
    TokenizerSpec(max_length=None, lowercase=False),
    TokenizerSpec(max_length=16, strip_punctuation=False),
    TokenizerSpec(max_length=None, lowercase=False, strip_punctuation=False, min_frequency=2),
]


def reference(tokenizer, texts: list[str]) -> list[list[int]]:
    # what a user of transformers calls, through the tokenizers pipeline end to end
    return tokenizer(texts, truncation=True)["input_ids"]


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    texts = []
    for name in ("imdb", "sms_spam", "trec", "disaster_tweets"):
        splits, _ = load_splits(DataSpec(dataset=name, max_train_samples=600))
        texts += list(splits["train"]["text"])
    return texts


def random_texts(count: int, seed: int) -> list[str]:
    """Texts over every Latin-1 character (controls, C1 controls, NBSP, soft hyphen, accents, symbols), characters
    above U+00FF that lowercase or split differently, and the special tokens written out."""
    rng = random.Random(seed)
    latin1 = [chr(code) for code in range(256)]
    beyond = ["’", "“", "—", "…", "İ", "Σ", "ς", "ǅ", "\u0301", "\u2028", "\u3000", "日本", "🎬", "ﬁ"]
    pieces = ["word", "Movie", "THE", "don't", "[UNK]", "[pad]", "[Pad]x", " ", "  ", "\n", "a_b", "42"]
    alphabet = latin1 * 3 + beyond + pieces * 20
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 30))) for _ in range(count)]


@pytest.mark.parametrize("spec", SPECS, ids=["default", "cased", "punctuation-kept", "cased-punctuation-kept"])
def test_arrow_path_gives_the_ids_of_the_transformers_call(spec, real_texts):
    texts = real_texts + random_texts(3000, seed=0)
    # the vocabulary holds accented, symbol and special-looking words too
    tokenizer = build_tokenizer(spec, texts)
    encoder = TextEncoder(tokenizer)
    assert encoder.word_level is not None
    assert encoder(texts) == reference(tokenizer, texts)
    assert encoder.arrow(pa.chunked_array([texts[:100], texts[100:]])).to_pylist() == reference(tokenizer, texts)


def test_left_truncation_and_missing_texts():
    texts = random_texts(500, seed=1) + ["one two three four five six seven"]
    tokenizer = build_tokenizer(TokenizerSpec(max_length=4), texts)
    tokenizer.truncation_side = "left"
    assert TextEncoder(tokenizer)(texts) == reference(tokenizer, texts)
    assert TextEncoder(tokenizer)([None, "", "   "]) == [[], [], []]


def test_truncation_changed_on_the_backend_afterwards_holds():
    # language-model blocks switch truncation off on the encoder's backend after building it
    texts = ["w " * 40, "x y"]
    tokenizer = build_tokenizer(TokenizerSpec(max_length=8), texts)
    encoder = TextEncoder(tokenizer)
    assert [len(ids) for ids in encoder(texts)] == [8, 2]
    encoder.backend.no_truncation()
    assert [len(ids) for ids in encoder(texts)] == [40, 2]


def test_the_arrow_path_covers_the_real_texts_and_hands_over_the_rest(real_texts):
    tokenizer = build_tokenizer(TokenizerSpec(), real_texts)
    word_level = TextEncoder(tokenizer).word_level
    covered = word_level.covers(pa.array(real_texts))
    # Latin-1 texts, accents and Windows-1252 leftovers included, take the fast path
    assert covered.mean() > 0.99
    handed_over = ["it’s good", "[UNK] marks", "an [unk]", "日本"]
    assert not word_level.covers(pa.array(handed_over)).any()
    assert word_level.encode(handed_over) == reference(tokenizer, handed_over)


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "char"])
def test_other_tokenizers_keep_the_rust_path(kind):
    tokenizer = build_tokenizer(TokenizerSpec(kind=kind, max_tokens=60), ["a good movie", "a bad film"] * 5)
    encoder = TextEncoder(tokenizer)
    assert encoder.word_level is None
    assert encoder(["a good film", None]) == reference(tokenizer, ["a good film", ""])


def test_language_model_tokenizers_keep_the_rust_path():
    # their post-processor puts [BOS] before every text
    tokenizer = build_tokenizer(TokenizerSpec(), ["a good movie"], language_model=True)
    assert ArrowWordLevel.for_tokenizer(tokenizer.backend_tokenizer) is None


def test_tokenize_dataset_keeps_format_options_visible_columns_and_transforms():
    texts = ["A good movie!", "bad"]
    tokenizer = build_tokenizer(TokenizerSpec(), texts)
    dataset = Dataset.from_dict({"text": texts, "label": [1, 0], "extra": [5, 6]})
    hidden = tokenize_dataset(dataset.with_format("numpy", columns=["text", "label"], dtype=np.float32), tokenizer)
    assert hidden.format["columns"] == ["label", "input_ids", "length"]
    assert hidden.format["format_kwargs"] == {"dtype": np.float32} and "extra" not in hidden[0]
    transformed = tokenize_dataset(
        dataset.with_transform(lambda batch: {"n": [len(x) for x in batch["input_ids"]]}), tokenizer
    )
    assert transformed[:2] == {"n": [3, 1]}
    with pytest.raises(TypeError, match="holds int64 values, not strings"):
        tokenize_dataset(dataset, tokenizer, text_column="label")


def test_tokenize_dataset_keeps_columns_types_and_format():
    texts = ["A good movie!", "bad", "", "ünïcödé ’quotes’ 🎬"]
    tokenizer = build_tokenizer(TokenizerSpec(), texts)
    dataset = Dataset.from_dict({"label": [1, 0, 1, 0], "text": texts}).with_format("numpy")
    tokenized = tokenize_dataset(dataset, tokenizer)
    assert tokenized.column_names == ["label", "input_ids", "length"]
    assert str(tokenized.features["input_ids"]) == "List(Value('int64'))"
    assert tokenized.format["type"] == "numpy"
    assert isinstance(tokenized[0]["input_ids"], np.ndarray)
    plain = tokenized.with_format(None)
    assert plain["input_ids"][:] == reference(tokenizer, texts)
    assert plain["length"][:] == [len(ids) for ids in reference(tokenizer, texts)]
