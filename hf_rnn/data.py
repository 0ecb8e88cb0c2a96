"""Datasets for hf_rnn: embedded offline corpora, local files and Hub datasets, deterministic splits, collation.

Every loader ends in the same shape: a `datasets.DatasetDict` with `"train"`, `"validation"` and `"test"` splits whose
only columns are `"text"` (str) and `"label"` (int, a `ClassLabel` with the label names), so recipes, training and
evaluation never care where the data came from.
"""

import difflib
import glob
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .data_checks import first_bad_line, root_cause
from .embedded import EMBEDDED_DATASETS, EmbeddedDataset, LabelSet, load_embedded  # noqa: F401 (re-exported)

# Local file suffixes and the `datasets` builder that reads them.
_LOCAL_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass
class DataSpec:
    """
    Which dataset to read and how to split it.

    Args:
        dataset (`str`, *optional*, defaults to `"imdb"`):
            A name in `EMBEDDED_DATASETS`, a local `.csv` / `.json` / `.jsonl` / `.parquet` file or glob, or a
            `datasets` Hub name. With `data_files` it may be left out (the suffix names the builder) or name a Hub
            dataset whose files `data_files` picks.
        data_files (`dict[str, str | list[str]]`, *optional*):
            One file, glob or list of files per split, as `datasets.load_dataset(data_files=...)` takes them:
            `{train: train.csv, validation: dev.csv, test: test.csv}`. `train` is required; a `validation` or `test`
            entry is used as that split (no carving), a missing one is carved out of `train`.
        config_name (`str`, *optional*):
            Hub dataset configuration name.
        text_column (`str`, *optional*, defaults to `"text"`):
            Column holding the text.
        label_column (`str`, *optional*, defaults to `"label"`):
            Column holding the label (strings, integers or a `ClassLabel`). An embedded dataset may have a second
            label set (`trec`: `fine_label`, its 50 fine classes; see `hf-rnn list`).
        train_split (`str`, *optional*, defaults to `"train"`):
            Split to train on.
        validation_split (`str`, *optional*):
            Split to validate on. `None` carves `validation_size` of the training split out, deterministically.
        test_split (`str`, *optional*):
            Split to test on. `None` uses the official test split of an embedded dataset that has one (`trec`) and
            otherwise carves `test_size` of the training split out, deterministically.
        validation_size (`float`, *optional*, defaults to 0.1):
            Fraction of the training split carved out for validation.
        test_size (`float`, *optional*, defaults to 0.1):
            Fraction of the training split carved out for testing.
        max_train_samples (`int`, *optional*):
            Keep a seeded random subset of this many training rows (quick runs, tests).
        max_eval_samples (`int`, *optional*):
            Keep a seeded random subset of this many rows of the validation and of the test split.
        seed (`int`, *optional*, defaults to 42):
            Seed of the split and subset permutations.
    """

    dataset: str | None = None
    data_files: dict[str, str | list[str]] | None = None
    config_name: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None
    validation_size: float = 0.1
    test_size: float = 0.1
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    seed: int = 42

    def __post_init__(self):
        if self.data_files is not None:
            self._check_data_files()
        elif self.dataset is None:
            self.dataset = "imdb"
        if not self.dataset:
            raise ValueError("dataset must be a dataset name or file path; got an empty string.")
        entry = EMBEDDED_DATASETS.get(self.dataset)
        if entry is not None:
            for name, allowed in (("text_column", ["text"]), ("label_column", list(entry.label_columns))):
                if getattr(self, name) not in allowed:
                    raise ValueError(
                        f"Column {getattr(self, name)!r} not found in embedded dataset {entry.name!r}. Available "
                        f"columns: text, {', '.join(entry.label_columns)}; set {name} to one of them."
                    )
        if self.text_column == self.label_column:
            raise ValueError(f"text_column and label_column are both {self.text_column!r}; they must differ.")
        for name in ("validation_size", "test_size"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name}={value} is out of range; use a fraction strictly between 0 and 1.")
        if self.validation_size + self.test_size >= 1:
            raise ValueError(
                f"validation_size + test_size = {self.validation_size + self.test_size:g} leaves no training data; "
                "make their sum smaller than 1."
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} is out of range; use a positive number of rows or None for all.")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed} is out of range; use a non-negative integer.")

    def _check_data_files(self) -> None:
        """`data_files` names the splits train (required), validation and test; local files share one builder."""
        unknown = sorted(set(self.data_files) - {"train", "validation", "test"})
        if unknown or "train" not in self.data_files:
            raise ValueError(
                f"data_files has splits {', '.join(self.data_files) or 'none'}; give train (required) and optionally "
                "validation and test, e.g. {train: train.csv, test: test.csv}."
            )
        for split, files in self.data_files.items():
            if not files or not all(isinstance(f, str) and f for f in ([files] if isinstance(files, str) else files)):
                raise ValueError(f"data_files.{split} must be a file, a glob or a list of files, got {files!r}.")
        if self.dataset in EMBEDDED_DATASETS:
            raise ValueError(f"data_files reads your own files; {self.dataset!r} is embedded, so remove one of them.")
        if self.dataset is None or self.dataset in set(_LOCAL_BUILDERS.values()):
            suffixes = {Path(f).suffix.lower() for f in self._files_of(list(self.data_files))}
            builders = {_LOCAL_BUILDERS.get(suffix) for suffix in suffixes}
            if None in builders or len(builders) != 1:
                raise ValueError(
                    f"data_files must all be {' / '.join(_LOCAL_BUILDERS)} files of one kind, got suffixes "
                    f"{', '.join(sorted(suffixes))}."
                )
            self.dataset = builders.pop()
        for name in ("validation_split", "test_split"):
            split = getattr(self, name)
            if split is not None and split not in self.data_files:
                raise ValueError(f"{name} {split!r} is not a split of data_files ({', '.join(self.data_files)}).")

    def _files_of(self, splits: list[str]) -> list[str]:
        """The data files of some splits, as listed (globs unexpanded)."""
        files = [self.data_files[split] for split in splits]
        return [f for entry in files for f in ([entry] if isinstance(entry, str) else entry)]


def load_splits(spec: DataSpec) -> tuple[DatasetDict, list[str]]:
    """
    Load the dataset described by `spec` and return deterministic train, validation and test splits.

    The same spec always gives the same splits: carved splits come from a seeded, stratified permutation and the
    `max_*_samples` subsets are seeded too, applied after splitting so the validation and test rows do not depend on
    how much training data is kept.

    Args:
        spec (`DataSpec`):
            The dataset, columns, splits and subset sizes.

    Returns:
        `tuple[datasets.DatasetDict, list[str]]`: splits `"train"`, `"validation"` and `"test"`, each with exactly the
        columns `"text"` (str, `None` read as `""`) and `"label"` (int in `0..n-1`), and the `n` label names in id
        order. String labels are named in sorted order; integer labels take their names from a `ClassLabel` feature
        when there is one and are otherwise named `str(value)`.

    Example:

    ```python
    >>> from hf_rnn.data import DataSpec, load_splits
    >>> splits, label_names = load_splits(DataSpec(dataset="imdb", max_train_samples=1000))
    >>> label_names
    ['neg', 'pos']
    ```
    """
    entry = EMBEDDED_DATASETS.get(spec.dataset)
    if entry is not None:
        if spec.config_name is not None:
            raise ValueError(f"config_name only applies to Hub datasets; remove it for embedded {spec.dataset!r}.")
        source, where = load_embedded(entry), f"embedded dataset {entry.name!r}"
    else:
        source, where = _load_external(spec)
    given = spec.data_files or {}
    test_split = spec.test_split or (
        "test" if "test" in given or (entry is not None and entry.official_test_rows) else None
    )
    validation_split = spec.validation_split or ("validation" if "validation" in given else None)
    # only the splits in use are read: others (such as imdb's unlabelled "unsupervised") may lack the columns
    used = [name for name in (spec.train_split, validation_split, test_split) if name is not None]
    for name in used:
        if name not in source:
            raise ValueError(f"Split {name!r} not found in {where}. Available splits: {', '.join(source)}.")
    source, label_names = _standardize(DatasetDict({name: source[name] for name in used}), spec, where)

    train = source[spec.train_split]
    if len(train) == 0:
        raise ValueError(f"Split {spec.train_split!r} of {where} is empty; point the data spec at a non-empty split.")
    fractions = {
        "test": spec.test_size if test_split is None else 0.0,
        "validation": spec.validation_size if validation_split is None else 0.0,
    }
    train, carved = _carve(train, fractions, spec.seed, where)
    splits = {
        "train": train,
        "validation": source[validation_split] if validation_split else carved["validation"],
        "test": source[test_split] if test_split else carved["test"],
    }
    limits = {"train": spec.max_train_samples, "validation": spec.max_eval_samples, "test": spec.max_eval_samples}
    return DatasetDict({name: _take(ds, limits[name], spec.seed) for name, ds in splits.items()}), label_names


def _load_external(spec: DataSpec) -> tuple[DatasetDict, str]:
    """Read a local file (or glob) or a Hub dataset; returns the raw splits and a phrase naming the source."""
    if spec.data_files is not None:
        return _load_data_files(spec)
    suffix = Path(spec.dataset).suffix.lower()
    if suffix in _LOCAL_BUILDERS:
        if spec.config_name is not None:
            raise ValueError(f"config_name only applies to Hub datasets; remove it for local file {spec.dataset!r}.")
        files = sorted(glob.glob(spec.dataset)) if glob.has_magic(spec.dataset) else [spec.dataset]
        missing = [f for f in files if not Path(f).is_file()]
        if not files or missing:
            raise ValueError(
                f"Data file {(missing or [spec.dataset])[0]!r} not found; check the path in the data spec."
            )
        return _load_local(files, _LOCAL_BUILDERS[suffix]), f"file {spec.dataset!r}"

    if Path(spec.dataset).is_file():
        raise ValueError(
            f"Data file {spec.dataset!r} has an unsupported suffix; use one of {', '.join(_LOCAL_BUILDERS)}."
        )
    close = difflib.get_close_matches(spec.dataset, EMBEDDED_DATASETS, n=1, cutoff=0.75)
    if close and "/" not in spec.dataset:
        # a near miss of an embedded name is a typo, not a Hub dataset: answer without a network round trip
        raise ValueError(
            f"Unknown dataset {spec.dataset!r}. Did you mean {close[0]!r}? "
            f"Embedded datasets: {', '.join(EMBEDDED_DATASETS)}."
        )
    try:
        loaded = datasets.load_dataset(spec.dataset, spec.config_name)
    except Exception as error:  # network, auth, missing repo or config: all end in the same advice
        raise ValueError(
            f"Could not load dataset {spec.dataset!r}: it is not an embedded dataset "
            f"({', '.join(EMBEDDED_DATASETS)}), not a local {'/'.join(_LOCAL_BUILDERS)} file, and the Hub load failed "
            f"with {type(error).__name__}: {error}"
        ) from error
    if not isinstance(loaded, DatasetDict):
        raise ValueError(
            f"Hub dataset {spec.dataset!r} loaded as {type(loaded).__name__}, not a DatasetDict of splits."
        )
    return loaded, f"Hub dataset {spec.dataset!r}"


def _load_data_files(spec: DataSpec) -> tuple[DatasetDict, str]:
    """Per-split files (`data.data_files`): local ones through their builder, or a Hub dataset's files."""
    if spec.dataset not in set(_LOCAL_BUILDERS.values()):
        try:
            loaded = datasets.load_dataset(spec.dataset, spec.config_name, data_files=spec.data_files)
        except Exception as error:  # network, auth, missing repo or files: all end in the same advice
            raise ValueError(
                f"Could not load data_files {spec.data_files} of Hub dataset {spec.dataset!r}: "
                f"{type(error).__name__}: {error}"
            ) from error
        return loaded, f"Hub dataset {spec.dataset!r}"
    files = {}
    for split, entry in spec.data_files.items():
        listed = [entry] if isinstance(entry, str) else list(entry)
        expanded = [
            f for pattern in listed for f in (sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])
        ]
        missing = [f for f in expanded if not Path(f).is_file()]
        if not expanded or missing:
            raise ValueError(f"data_files.{split}: file {(missing or listed)[0]!r} not found; check the path.")
        files[split] = expanded
    return _load_local(files, spec.dataset), f"data_files ({', '.join(files)})"


def _load_local(files: list[str] | dict[str, list[str]], builder: str) -> DatasetDict:
    """Load local files (one list, or one per split) with a `datasets` builder, turning encoding failures into an
    actionable message."""
    # keep_default_na=False: a text that reads "NA" or "null" stays text instead of becoming a missing value
    kwargs = {"keep_default_na": False} if builder == "csv" else {}
    try:
        return datasets.load_dataset(builder, data_files=files, **kwargs)
    except Exception as error:  # the builders wrap parse errors in DatasetGenerationError and friends
        if builder != "parquet":
            for path in files if isinstance(files, list) else [f for split in files.values() for f in split]:
                bad = _first_non_utf8_byte(path)
                if bad is not None:
                    raise ValueError(
                        f"{path} is not UTF-8 (invalid byte at offset {bad}); re-encode it, for example "
                        f"`iconv -f latin1 -t utf-8 {path} > fixed{Path(path).suffix}`."
                    ) from error
            for path in files:
                bad = first_bad_line(path)
                if bad is not None:
                    raise ValueError(bad) from error
        cause = root_cause(error)
        raise ValueError(
            f"Could not read {', '.join(files)} ({type(cause).__name__}: {cause}); check that it holds data rows."
        ) from error


def _first_non_utf8_byte(path: str) -> int | None:
    """Offset of the first byte that is not valid UTF-8, or None when the whole file decodes."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return None


def _standardize(source: DatasetDict, spec: DataSpec, where: str) -> tuple[DatasetDict, list[str]]:
    """Reduce every split to `text` (str) and `label` (int ClassLabel) and return the label names."""
    for split_name, split in source.items():
        for column in (spec.text_column, spec.label_column):
            if column not in split.column_names:
                raise ValueError(
                    f"Column {column!r} not found in split {split_name!r} of {where}. Available columns: "
                    f"{', '.join(split.column_names)}. Set text_column / label_column in the data spec."
                )
    first = next(iter(source.values()))
    label_feature = first.features[spec.label_column]
    if isinstance(label_feature, ClassLabel):
        label_names, label_to_id = list(label_feature.names), None
    else:
        label_names, label_to_id = _label_vocabulary(source, spec.label_column, where)
    features = Features({"text": Value("string"), "label": ClassLabel(names=label_names)})

    def already_standard(split: Dataset) -> bool:
        # embedded caches are stored in the final form; skipping the map keeps their second load instant
        return (
            split.column_names == ["text", "label"]
            and split.features == features
            and split.data.column("text").null_count == 0
        )

    def convert(batch: dict[str, list]) -> dict[str, list]:
        texts = ["" if text is None else str(text) for text in batch[spec.text_column]]
        labels = batch[spec.label_column]
        return {"text": texts, "label": labels if label_to_id is None else [label_to_id[v] for v in labels]}

    standard = {}
    for split_name, split in source.items():
        if already_standard(split):
            standard[split_name] = split
            continue
        standard[split_name] = split.map(
            convert,
            batched=True,
            remove_columns=split.column_names,
            features=features,
            desc=f"Reading {split_name} texts and labels",
        )
    return DatasetDict(standard), label_names


def _label_vocabulary(source: DatasetDict, label_column: str, where: str) -> tuple[list[str], dict]:
    """Label names and value -> id map for plain string or integer labels, consistent across all splits."""
    values = set()
    for split in source.values():
        values.update(split.unique(label_column))
    if not values:
        raise ValueError(f"{where} has no rows; point the data spec at a non-empty dataset.")
    if None in values or "" in values:
        raise ValueError(f"Some rows of {where} have no {label_column!r} value; fill or drop them first.")
    if all(isinstance(v, str) for v in values):
        ordered = sorted(values)
    elif all(isinstance(v, (int, np.integer)) for v in values):
        ordered = sorted(int(v) for v in values)
    else:
        kinds = sorted({type(v).__name__ for v in values})
        raise ValueError(
            f"Column {label_column!r} of {where} holds {', '.join(kinds)} values; classification needs string or "
            "integer labels."
        )
    return [str(v) for v in ordered], {v: i for i, v in enumerate(ordered)}


def _carve(train: Dataset, fractions: dict[str, float], seed: int, where: str) -> tuple[Dataset, dict[str, Dataset]]:
    """
    Split seeded, stratified parts off `train`; a fraction of 0 carves nothing.

    Rows are permuted with the seed, grouped by label (random order within each label), and every part takes evenly
    spaced positions of that order, so each label is represented in proportion while the part sizes stay exact.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(train["label"][:])  # slicing the column reads it in one go, iterating it reads row by row
    order = rng.permutation(len(train))
    order = order[np.argsort(labels[order], kind="stable")]
    parts = {}
    for name, fraction in fractions.items():
        if fraction == 0:
            continue
        size = max(1, round(len(train) * fraction))
        if size >= len(order):
            raise ValueError(
                f"{where} has only {len(train)} training rows, too few to carve a {name} split; "
                f"use more data or name an existing {name}_split."
            )
        picked = np.zeros(len(order), dtype=bool)
        picked[np.arange(size) * len(order) // size] = True
        parts[name], order = order[picked], order[~picked]
    # shuffle each part so that any prefix of it is a random sample, not one label after another
    return train.select(rng.permutation(order)), {
        name: train.select(rng.permutation(idx)) for name, idx in parts.items()
    }


def _take(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset of `limit` rows, in dataset order; smaller limits give subsets of larger ones."""
    if limit is None or len(dataset) <= limit:
        return dataset
    keep = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    return dataset.select(np.sort(keep))


class PaddingCollator:
    """
    Pad tokenized examples to the longest sequence in the batch.

    Padding per batch (instead of to a fixed length) together with length-grouped batches is what makes recurrent
    models fast: an LSTM step costs the same for a pad token as for a real one.

    Args:
        pad_token_id (`int`, *optional*, defaults to 0):
            Id written into the padded positions.
        pad_to_multiple_of (`int`, *optional*):
            Round the padded length up to a multiple of this number.

    Example:

    ```python
    >>> collator = PaddingCollator(pad_token_id=0)
    >>> batch = collator([{"input_ids": [5, 6, 7], "label": 1}, {"input_ids": [8], "label": 0}])
    >>> batch["input_ids"]
    tensor([[5, 6, 7],
            [8, 0, 0]])
    ```
    """

    def __init__(self, pad_token_id: int = 0, pad_to_multiple_of: int | None = None):
        if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of={pad_to_multiple_of} is out of range; use a positive int or None.")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        """
        Args:
            features (`Sequence[dict]`):
                Examples with `input_ids` (a list, array or tensor of ids) and optionally `label` or `labels` and
                `inputs_embeds` (cached encoder outputs of shape `[steps, hidden]`: an array, or the `.npy` bytes
                that `hf_rnn.frontends.add_frontend_features` stores); other keys (`length`, `text`, ...) are
                ignored.

        Returns:
            `dict[str, torch.Tensor]`: `input_ids` and `attention_mask` (`LongTensor` of shape `[batch, time]`,
            right-padded), when the examples carry labels, `labels` (long for integer labels, float for float or
            multi-label lists). Examples that carry `inputs_embeds` give those, zero-padded to `[batch, steps, hidden]`
            (`steps` is `time` for token-level features), in place of `input_ids`: the model reads them instead of
            running its encoder, and the attention mask still gives each text's length.
        """
        if not features:
            raise ValueError("PaddingCollator received an empty batch; check the sampler and batch size.")
        lengths = np.fromiter((len(f["input_ids"]) for f in features), dtype=np.int64, count=len(features))
        # at least one time step: recurrent layers reject zero-length input even when every text is empty
        width = max(1, int(lengths.max()))
        if self.pad_to_multiple_of is not None:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(features), width), self.pad_token_id, dtype=np.int64)
        for row, (feature, length) in enumerate(zip(features, lengths)):
            input_ids[row, :length] = np.asarray(feature["input_ids"], dtype=np.int64)
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy((np.arange(width) < lengths[:, None]).astype(np.int64)),
        }
        label_key = "labels" if "labels" in features[0] else "label" if "label" in features[0] else None
        if label_key is not None:
            labels = np.asarray([np.asarray(f[label_key]) for f in features])
            # class ids feed cross-entropy (long); regression values and multi-label vectors feed MSE / BCE (float)
            is_class_id = labels.ndim == 1 and labels.dtype.kind in "iub"
            batch["labels"] = torch.from_numpy(labels).to(torch.long if is_class_id else torch.float)
        if "inputs_embeds" in features[0]:
            # cached encoder outputs (hf_rnn.frontends): one row per token, or a single row for pooled outputs
            rows = [_feature_array(f["inputs_embeds"]) for f in features]
            steps = max(1, max(len(values) for values in rows))
            if self.pad_to_multiple_of is not None:
                steps = -(-steps // self.pad_to_multiple_of) * self.pad_to_multiple_of
            padded = np.zeros((len(rows), steps, rows[0].shape[-1]), dtype=rows[0].dtype)
            for row, values in enumerate(rows):
                padded[row, : len(values)] = values
            # a model takes input_ids or inputs_embeds, not both
            del batch["input_ids"]
            batch["inputs_embeds"] = torch.from_numpy(padded)
        return batch


def _feature_array(value) -> np.ndarray:
    """Cached encoder features as an array: stored as `.npy` bytes (no pickles), or already an array."""
    if isinstance(value, bytes):
        return np.load(io.BytesIO(value), allow_pickle=False)
    return np.asarray(value)


def sort_by_length(dataset: Dataset, length_column: str = "length") -> Dataset:
    """
    Order a tokenized dataset by length, longest first; ties keep their order (stable).

    Evaluation batches of similar lengths waste little time on padding, and the longest batch comes first, so an
    out-of-memory error shows up at once rather than at the end of an evaluation.

    Args:
        dataset (`datasets.Dataset`):
            A dataset with a length column, as written by `hf_rnn.tokenization.tokenize_dataset`.
        length_column (`str`, *optional*, defaults to `"length"`):
            Column holding each row's number of tokens.

    Returns:
        `datasets.Dataset`: the same rows, reordered.
    """
    if length_column not in dataset.column_names:
        raise ValueError(
            f"Column {length_column!r} not found (columns: {', '.join(dataset.column_names)}); "
            "tokenize with hf_rnn.tokenization.tokenize_dataset first."
        )
    lengths = np.asarray(dataset[length_column][:])  # one columnar read, not one row at a time
    return dataset.select(np.argsort(-lengths, kind="stable"))
