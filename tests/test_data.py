"""Tests for hf_rnn.data: embedded and local datasets, deterministic splits, collation and length sorting."""

import json
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from datasets import Dataset

from hf_rnn.data import EMBEDDED_DATASETS, DataSpec, EmbeddedDataset, PaddingCollator, load_splits, sort_by_length
from hf_rnn.embedded import _EMBEDDED_CACHE_FORMAT
from hf_rnn.tokenization import TokenizerSpec, build_tokenizer, tokenize_dataset


@pytest.fixture(scope="module", autouse=True)
def datasets_cache(tmp_path_factory):
    """A private datasets cache, so the tests neither reuse nor leave behind the user's caches."""
    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


@pytest.fixture(scope="module")
def imdb():
    return load_splits(DataSpec(dataset="imdb"))


def write_csv(path: Path, rows: list[tuple[str, str]]) -> str:
    lines = ["text,label"] + [f'"{text}",{label}' for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def labelled_csv(tmp_path):
    rows = [(f"review number {i}", ["pos", "neg", "meh"][i % 3]) for i in range(60)]
    return write_csv(tmp_path / "reviews.csv", rows)


def texts(split) -> list[str]:
    return split["text"][:]


def test_imdb_splits_cover_the_training_set(imdb):
    splits, label_names = imdb
    assert label_names == ["neg", "pos"]
    assert sum(len(split) for split in splits.values()) == 25_000
    assert (len(splits["validation"]), len(splits["test"])) == (2_500, 2_500)
    for split in splits.values():
        assert split.column_names == ["text", "label"]
        counts = Counter(split["label"][:])
        assert abs(counts[0] - counts[1]) <= 0.02 * len(split)


def test_imdb_second_load_is_identical_and_cached(imdb, datasets_cache):
    splits, _ = imdb
    again, _ = load_splits(DataSpec(dataset="imdb"))
    for name in ("train", "validation", "test"):
        assert texts(again[name]) == texts(splits[name])
        assert again[name]["label"][:] == splits[name]["label"][:]
    cached = [path.name for path in (datasets_cache / "hf_rnn").iterdir()]
    # the atomic write leaves the final directory only, no temporary one
    assert [name for name in cached if name.startswith("imdb")] == [f"imdb-0.0.2-format{_EMBEDDED_CACHE_FORMAT}"]
    assert not [name for name in cached if name.startswith(".")]


def test_slices_are_seeded_subsets_of_the_full_splits(imdb):
    splits, _ = imdb
    small, _ = load_splits(DataSpec(dataset="imdb", max_train_samples=100, max_eval_samples=20))
    assert [len(small[name]) for name in ("train", "validation", "test")] == [100, 20, 20]
    for name in ("train", "validation", "test"):
        assert set(texts(small[name])) <= set(texts(splits[name]))
    smaller, _ = load_splits(DataSpec(dataset="imdb", max_train_samples=50, max_eval_samples=20))
    assert set(texts(smaller["train"])) <= set(texts(small["train"]))
    assert texts(smaller["test"]) == texts(small["test"])


@pytest.mark.parametrize("name", [name for name in EMBEDDED_DATASETS if name != "imdb"])
def test_embedded_dataset_loads(name):
    entry = EMBEDDED_DATASETS[name]
    splits, label_names = load_splits(DataSpec(dataset=name))
    assert label_names == list(entry.label_names)
    for split in splits.values():
        assert split.column_names == ["text", "label"]
        assert len(split) > 0
        assert set(split["label"][:]) == set(range(len(label_names)))
        assert all(isinstance(text, str) for text in split["text"][:])


def test_embedded_sizes():
    sizes = {
        "rotten_tomatoes": 8_530,
        "sms_spam": 4_837,
        "trec": 5_952,
        "disaster_tweets": 7_613,
    }
    for name, size in sizes.items():
        splits, _ = load_splits(DataSpec(dataset=name))
        assert sum(len(split) for split in splits.values()) == size, name


def test_trec_uses_its_official_test_split():
    splits, label_names = load_splits(DataSpec(dataset="trec"))
    assert len(label_names) == 6
    assert (len(splits["train"]) + len(splits["validation"]), len(splits["test"])) == (5_452, 500)
    assert splits["test"][0]["text"] == "How far is it from Denver to Aspen ?"
    sliced, _ = load_splits(DataSpec(dataset="trec", max_eval_samples=50))
    assert len(sliced["test"]) == 50


def test_local_csv_with_string_labels(labelled_csv):
    spec = DataSpec(dataset=labelled_csv, validation_size=0.2, test_size=0.2)
    splits, label_names = load_splits(spec)
    assert label_names == ["meh", "neg", "pos"]
    assert [len(splits[name]) for name in ("train", "validation", "test")] == [36, 12, 12]
    # stratified: each label is equally represented in every split
    for split in splits.values():
        counts = Counter(split["label"][:])
        assert len(counts) == 3 and max(counts.values()) - min(counts.values()) <= 1
    # labels follow their names
    row = next(row for split in splits.values() for row in split if row["text"] == "review number 0")
    assert label_names[row["label"]] == "pos"
    # disjoint and complete
    parts = [set(texts(split)) for split in splits.values()]
    assert set.union(*parts) == {f"review number {i}" for i in range(60)}
    assert sum(len(part) for part in parts) == 60

    again, _ = load_splits(spec)
    assert all(texts(again[name]) == texts(splits[name]) for name in splits)
    reseeded, _ = load_splits(DataSpec(dataset=labelled_csv, validation_size=0.2, test_size=0.2, seed=7))
    assert texts(reseeded["test"]) != texts(splits["test"])


def test_csv_keeps_empty_and_na_texts(tmp_path):
    path = write_csv(tmp_path / "na.csv", [("NA", "a"), ("", "b"), ("null", "a")] * 4)
    splits, _ = load_splits(DataSpec(dataset=path, max_eval_samples=1))
    assert set(texts(splits["train"])) <= {"NA", "", "null"}
    assert "" in texts(splits["train"]) and "NA" in texts(splits["train"])


def test_local_jsonl_with_integer_labels_and_missing_text(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"sentence": None if i == 0 else f"line {i}", "stars": 1 + i % 2} for i in range(20)]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    splits, label_names = load_splits(DataSpec(dataset=str(path), text_column="sentence", label_column="stars"))
    assert label_names == ["1", "2"]
    everything = [row for split in splits.values() for row in split]
    assert len(everything) == 20
    assert {row["label"] for row in everything} == {0, 1}
    assert "" in {row["text"] for row in everything}
    assert all(list(row) == ["text", "label"] for row in everything)


def test_glob_of_csv_files(tmp_path):
    write_csv(tmp_path / "a.csv", [(f"a{i}", "x") for i in range(10)])
    write_csv(tmp_path / "b.csv", [(f"b{i}", "y") for i in range(10)])
    splits, label_names = load_splits(DataSpec(dataset=str(tmp_path / "*.csv")))
    assert label_names == ["x", "y"]
    assert sum(len(split) for split in splits.values()) == 20


def test_missing_column_lists_available_columns(labelled_csv):
    with pytest.raises(ValueError, match=r"'review' not found.*Available columns: text, label"):
        load_splits(DataSpec(dataset=labelled_csv, text_column="review"))
    with pytest.raises(ValueError, match=r"'sentiment' not found.*Available columns: text, label"):
        load_splits(DataSpec(dataset="sms_spam", label_column="sentiment"))


def test_missing_split_lists_available_splits(labelled_csv):
    with pytest.raises(ValueError, match=r"Split 'dev' not found.*Available splits: train"):
        load_splits(DataSpec(dataset=labelled_csv, validation_split="dev"))


def test_non_utf8_file_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncafé crème,pos\nbad,neg\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv is not UTF-8.*re-encode"):
        load_splits(DataSpec(dataset=str(path)))


def test_missing_and_unknown_datasets(tmp_path):
    with pytest.raises(ValueError, match=r"not found"):
        load_splits(DataSpec(dataset=str(tmp_path / "missing.csv")))
    with pytest.raises(ValueError, match=r"not found"):
        load_splits(DataSpec(dataset=str(tmp_path / "nothing-*.jsonl")))
    with pytest.raises(ValueError, match=r"Did you mean 'imdb'\?.*imdb, rotten_tomatoes, sms_spam, trec"):
        load_splits(DataSpec(dataset="imbd"))
    tsv = tmp_path / "data.tsv"
    tsv.write_text("text\tlabel\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unsupported suffix"):
        load_splits(DataSpec(dataset=str(tsv)))


def test_empty_and_unlabelled_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.csv"):
        load_splits(DataSpec(dataset=str(empty)))
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("text,label\na,x\nb,\nc,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no 'label' value"):
        load_splits(DataSpec(dataset=str(unlabelled)))
    floats = tmp_path / "floats.jsonl"
    floats.write_text('{"text": "a", "label": 0.5}\n{"text": "b", "label": 1.5}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"string or integer labels"):
        load_splits(DataSpec(dataset=str(floats)))


def test_too_small_to_carve(tmp_path):
    path = write_csv(tmp_path / "two.csv", [("a", "x"), ("b", "y")])
    with pytest.raises(ValueError, match=r"too few to carve"):
        load_splits(DataSpec(dataset=path))


def test_missing_package_says_what_to_install(monkeypatch):
    entry = EmbeddedDataset(
        name="absent",
        description="",
        package="hf-rnn-no-such-package",
        install="pip install hf-rnn-no-such-package==1.0",
        path="data.csv",
        text_column="text",
        label_column="label",
        label_names=("a", "b"),
        license="",
        splits_note="",
    )
    monkeypatch.setitem(EMBEDDED_DATASETS, "absent", entry)
    with pytest.raises(ValueError, match=r"`pip install hf-rnn-no-such-package==1\.0`"):
        load_splits(DataSpec(dataset="absent"))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"validation_size": 0.0}, "validation_size"),
        ({"test_size": 1.0}, "test_size"),
        ({"validation_size": 0.5, "test_size": 0.5}, "validation_size \\+ test_size"),
        ({"max_train_samples": 0}, "max_train_samples"),
        ({"max_eval_samples": -1}, "max_eval_samples"),
        ({"seed": -1}, "seed"),
        ({"text_column": "label"}, "text_column"),
        ({"dataset": ""}, "dataset"),
    ],
)
def test_spec_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DataSpec(**kwargs)


def test_collator_pads_to_the_longest_sequence():
    features = [
        {"input_ids": [5, 6, 7], "label": 1, "length": 3, "text": "x"},
        {"input_ids": [8], "label": 0, "length": 1, "text": "y"},
        {"input_ids": [], "label": 1, "length": 0, "text": ""},
    ]
    batch = PaddingCollator(pad_token_id=9)(features)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9], [9, 9, 9]]
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == batch["labels"].dtype == torch.long
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 1, 0]
    assert batch["labels"].tolist() == [1, 0, 1]


def test_collator_options_and_label_types():
    features = [{"input_ids": np.array([1, 2, 3, 4, 5])}, {"input_ids": torch.tensor([6])}]
    batch = PaddingCollator(pad_to_multiple_of=4)(features)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].sum(dim=1).tolist() == [5, 1]
    assert "labels" not in batch

    assert PaddingCollator()([{"input_ids": [], "labels": 0.5}])["input_ids"].shape == (1, 1)
    regression = PaddingCollator()([{"input_ids": [1], "labels": 0.5}, {"input_ids": [2], "labels": 2.0}])
    assert regression["labels"].dtype == torch.float
    multi_label = PaddingCollator()([{"input_ids": [1], "label": [0, 1]}, {"input_ids": [2], "label": [1, 1]}])
    assert multi_label["labels"].dtype == torch.float and multi_label["labels"].shape == (2, 2)
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        PaddingCollator(pad_to_multiple_of=0)


def test_sort_by_length_is_stable_and_descending():
    dataset = Dataset.from_dict({"length": [2, 5, 2, 7, 5, 0], "row": [0, 1, 2, 3, 4, 5]})
    assert sort_by_length(dataset)["row"][:] == [3, 1, 4, 0, 2, 5]
    assert sort_by_length(dataset.select([5, 4, 3]))["row"][:] == [3, 4, 5]
    with pytest.raises(ValueError, match="tokenize_dataset"):
        sort_by_length(dataset.remove_columns("length"))


def test_tokenized_splits_collate_into_a_batch():
    splits, _ = load_splits(DataSpec(dataset="sms_spam", max_train_samples=64, max_eval_samples=16))
    tokenizer = build_tokenizer(TokenizerSpec(max_tokens=500, max_length=32), splits["train"]["text"][:])
    tokenized = tokenize_dataset(splits, tokenizer)
    evaluation = sort_by_length(tokenized["validation"])
    batch = PaddingCollator(tokenizer.pad_token_id)([evaluation[i] for i in range(8)])
    assert batch["input_ids"].shape == (8, evaluation[0]["length"])
    assert batch["attention_mask"].sum(dim=1).tolist() == evaluation["length"][:8]
    assert batch["labels"].tolist() == evaluation["label"][:8]
