"""Word-level tokenization in Arrow compute kernels, with the token ids of the `tokenizers` pipeline it mirrors.

`tokenizers` spends most of a word-level encoding in its pre-tokenizers (about 13,000 IMDB reviews/s on 2 cores for a
whitespace split alone). A word-level tokenizer of hf_rnn (`Lowercase` normalizer, `Punctuation` and `Whitespace`
pre-tokenizers, `WordLevel` model) only classifies characters: each one is part of a word, a separator, or a
symbol that forms tokens of its own (`Whitespace` splits `\\w+|[^\\w\\s]+`). `ArrowWordLevel` asks the tokenizer
itself how it treats each of the 256 Latin-1 characters, turns the answer into three character classes, and then
lowercases, splits and looks words up with pyarrow's vectorized kernels (RE2 regexes, a hash lookup), with no Python
work per text. Texts outside what the probe covers (a character above U+00FF, an added token such as `[UNK]`
written in the text) go through `tokenizers` as before, so every text gets exactly the ids `encode_batch` gives
(tested on the embedded datasets and on generated texts).
"""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tokenizers import Tokenizer

from .cpu import available_cores

# pre-tokenizers that split by character class only, so probing single characters tells all they do
_CHARACTER_CLASS_PRE_TOKENIZERS = ({"type": "Whitespace"}, {"type": "Punctuation", "behavior": "Removed"})
# texts per thread: Arrow's kernels release the GIL, so chunks run on all cores
_CHUNK = 2048


def _char_class(chars: list[str]) -> str:
    # an RE2 character class of exactly these characters, each written as an escape
    return "[" + "".join(f"\\x{{{ord(char):x}}}" for char in chars) + "]"


class ArrowWordLevel:
    """
    Encodes texts as `backend.encode_batch_fast(texts)` does, through Arrow kernels where that is exact.

    Build it with `ArrowWordLevel.for_tokenizer(backend)`, which returns `None` for tokenizers it does not mirror
    (subword and character models, other normalizers or pre-tokenizers, post-processors that add tokens).
    Truncation follows the backend's setting at call time.
    """

    def __init__(
        self,
        backend: Tokenizer,
        model: dict,
        lowercase: bool,
        word: list[str],
        separator: list[str],
        symbol: list[str],
    ):
        self.backend = backend
        self.lowercase = lowercase
        # ids are positions in this array, which `index_in` returns (`for_tokenizer` checked they are 0..n-1)
        self.vocabulary = pa.array(sorted(model["vocab"], key=model["vocab"].get), pa.string())
        self.unk_id = model["vocab"][model["unk_token"]]
        self.eligible = "^" + _char_class(word + separator + symbol) + "*$"
        self.added_tokens = [token.content for token in backend.get_added_tokens_decoder().values()]
        self.symbols = _char_class(symbol) + "+" if symbol else None
        # spaces need no replacing before the split on " ": matching every one would double the regex pass's time
        self.separators = _char_class([char for char in separator if char != " "]) + "+"

    @classmethod
    def for_tokenizer(cls, backend: Tokenizer) -> "ArrowWordLevel | None":
        """An `ArrowWordLevel` for `backend` when its pipeline is a word-level one this module mirrors, else `None`."""
        spec = json.loads(backend.to_str())
        model = spec["model"]
        if model["type"] != "WordLevel" or model.get("unk_token") not in model["vocab"]:
            return None
        if sorted(model["vocab"].values()) != list(range(len(model["vocab"]))):
            return None
        normalizer = spec.get("normalizer")
        if normalizer not in (None, {"type": "Lowercase"}):
            return None
        pre_tokenizer = spec.get("pre_tokenizer")
        steps = pre_tokenizer.get("pretokenizers", []) if pre_tokenizer else []
        if pre_tokenizer and pre_tokenizer["type"] != "Sequence":
            steps = [pre_tokenizer]
        if not steps or any(step not in _CHARACTER_CLASS_PRE_TOKENIZERS for step in steps):
            return None
        if backend.post_processor is not None and backend.post_processor.num_special_tokens_to_add(False):
            return None
        lowercase = normalizer is not None
        word, separator, symbol = [], [], []
        lowered = pc.utf8_lower(pa.array([chr(code) for code in range(256)])).to_pylist() if lowercase else None
        for code in range(256):
            char = chr(code)
            normal = backend.normalizer.normalize_str(char) if lowercase else char
            if lowercase and normal != lowered[code]:
                continue  # Arrow lowercases it differently: texts with it take the tokenizers path
            pieces = _pieces(backend, f"a{normal}a")
            if pieces == [f"a{normal}a"]:
                word.append(char)
            elif pieces == ["a", "a"]:
                separator.append(char)
            # `Whitespace` keeps a run of symbols together: "a´´a" is "a", "´´", "a"
            elif pieces == ["a", normal, "a"] and _pieces(backend, f"a{normal}{normal}a") == ["a", normal * 2, "a"]:
                symbol.append(char)
        if " " not in separator:
            return None
        return cls(backend, model, lowercase, word, separator, symbol)

    def encode(self, texts: list[str | None]) -> list[list[int]]:
        """The token ids of each text; `None` counts as an empty text."""
        encoded = self.encode_arrow(pa.array(texts, pa.string()))
        ids = encoded.values.to_numpy().tolist()
        offsets = encoded.offsets.to_numpy().tolist()
        return [ids[start:end] for start, end in zip(offsets[:-1], offsets[1:])]

    def encode_arrow(self, texts: pa.StringArray) -> pa.ListArray:
        """`encode` from an Arrow string array to an Arrow list array of int32 ids, on all available cores."""
        texts = texts.cast(pa.string())  # large_string and null arrays too
        if len(texts) <= _CHUNK:
            return self._encode_chunk(texts)
        # chunks of a few thousand texts also stay in the caches: 2x faster than one pass even on one core
        chunks = [texts.slice(start, _CHUNK) for start in range(0, len(texts), _CHUNK)]
        with ThreadPoolExecutor(available_cores()) as pool:
            return pa.concat_arrays(list(pool.map(self._encode_chunk, chunks)))

    def covers(self, texts: pa.StringArray) -> np.ndarray:
        """Which texts the Arrow path encodes; the others (a character above U+00FF, an added token's text in any
        case) go through `tokenizers`."""
        texts = pc.fill_null(texts, "")
        covered = pc.match_substring_regex(texts, self.eligible)
        for token in self.added_tokens:
            covered = pc.and_(covered, pc.invert(pc.match_substring(texts, token, ignore_case=True)))
        return covered.to_numpy(zero_copy_only=False)

    def _encode_chunk(self, texts: pa.StringArray) -> pa.ListArray:
        original = pc.fill_null(texts, "")
        rest = np.flatnonzero(~self.covers(original))
        texts = pc.utf8_lower(original) if self.lowercase else original
        if self.symbols:
            # a run of symbols is a token of its own ("´´" in "don´´t"); few texts have one, so only those are edited
            has_symbols = pc.match_substring_regex(texts, self.symbols)
            if pc.any(has_symbols).as_py():
                spaced = pc.replace_substring_regex(texts.filter(has_symbols), self.symbols, " \\0 ")
                texts = pc.replace_with_mask(texts, has_symbols, spaced)
        # one regex pass turns separators into spaces, then a literal split (3x faster than a regex split)
        pieces = pc.split_pattern(pc.replace_substring_regex(texts, self.separators, " "), " ")
        words = pc.list_flatten(pieces)
        rows = pc.list_parent_indices(pieces).to_numpy()
        keep = pc.not_equal(words, "").to_numpy(zero_copy_only=False)
        ids = pc.fill_null(pc.index_in(words, value_set=self.vocabulary), self.unk_id).to_numpy()[keep]
        rows = rows[keep]
        lengths = np.bincount(rows, minlength=len(texts))
        truncation = self.backend.truncation
        if truncation is not None:
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            position = np.arange(len(ids)) - starts[rows]
            limit = truncation["max_length"]
            if truncation["direction"] == "left":
                position = position - (lengths[rows] - np.minimum(lengths[rows], limit))
                kept = position >= 0
            else:
                kept = position < limit
            ids, lengths = ids[kept], np.minimum(lengths, limit)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        encoded = pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids.astype(np.int32)))
        if len(rest) == 0:
            return encoded
        # texts the probe does not cover: the tokenizers pipeline itself, put back in place
        others = [encoding.ids for encoding in self.backend.encode_batch_fast(original.take(rest).to_pylist())]
        order = np.arange(len(texts))
        order[rest] = len(texts) + np.arange(len(rest))
        return pa.concat_arrays([encoded, pa.array(others, pa.list_(pa.int32()))]).take(pa.array(order))


def _pieces(backend: Tokenizer, text: str) -> list[str]:
    # the words the backend's pre-tokenizer splits `text` into
    return [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text)]
