"""Per-split data files (`data.data_files`, as `datasets` takes them) and the second label set of an embedded
dataset (TREC's 50 fine classes, `data.label_column: fine_label`), from a recipe."""

import json
import textwrap

import pytest

from hf_rnn.data import DataSpec, load_splits
from hf_rnn.recipes import RecipeError, load_recipe


def write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def split_files(tmp_path):
    labels = ["pos", "neg", "meh"]
    return {
        "train": write_csv(tmp_path / "train.csv", [(f"train {i}", labels[i % 3]) for i in range(30)]),
        "validation": write_csv(tmp_path / "dev.csv", [(f"dev {i}", labels[i % 3]) for i in range(6)]),
        "test": write_csv(tmp_path / "test.csv", [(f"test {i}", labels[i % 3]) for i in range(9)]),
    }


def test_each_split_comes_from_its_own_file(split_files):
    spec = DataSpec(data_files=split_files)
    assert spec.dataset == "csv"
    splits, label_names = load_splits(spec)
    assert label_names == ["meh", "neg", "pos"]
    assert {name: len(split) for name, split in splits.items()} == {"train": 30, "validation": 6, "test": 9}
    assert sorted(splits["test"]["text"][:]) == sorted(f"test {i}" for i in range(9))
    assert splits["train"].column_names == ["text", "label"]


def test_a_missing_split_is_carved_out_of_train(split_files, tmp_path):
    extra = write_csv(tmp_path / "more.csv", [(f"more {i}", "pos") for i in range(3)])
    spec = DataSpec(
        data_files={"train": [split_files["train"], extra], "test": split_files["test"]}, validation_size=0.2
    )
    splits, _ = load_splits(spec)
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (26, 7, 9)
    assert all(not text.startswith("test") for text in splits["validation"]["text"][:])


def test_json_lines_and_globs(tmp_path):
    for name, count in (("train-a.jsonl", 8), ("train-b.jsonl", 8), ("test.jsonl", 4)):
        rows = [{"text": f"{name} {i}", "label": i % 2} for i in range(count)]
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = DataSpec(data_files={"train": str(tmp_path / "train-*.jsonl"), "test": str(tmp_path / "test.jsonl")})
    splits, label_names = load_splits(spec)
    assert spec.dataset == "json" and label_names == ["0", "1"] and len(splits["test"]) == 4
    assert len(splits["train"]) + len(splits["validation"]) == 16


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"data_files": {"test": "a.csv"}}, r"give train \(required\)"),
        ({"data_files": {"train": "a.csv", "dev": "b.csv"}}, r"data_files has splits train, dev"),
        ({"data_files": {"train": "a.csv", "test": "b.tsv"}}, r"must all be \.csv / \.json / \.jsonl / \.parquet"),
        ({"data_files": {"train": "a.csv"}, "dataset": "imdb"}, r"'imdb' is embedded"),
        ({"data_files": {"train": []}}, r"data_files.train must be a file, a glob or a list"),
        ({"data_files": {"train": "a.csv"}, "test_split": "test"}, r"test_split 'test' is not a split of data_files"),
    ],
)
def test_bad_data_files(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataSpec(**kwargs)


def test_a_missing_data_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"data_files.test: file '.*nope.csv' not found"):
        load_splits(
            DataSpec(
                data_files={"train": write_csv(tmp_path / "t.csv", [("a", 1)]), "test": str(tmp_path / "nope.csv")}
            )
        )


def test_trec_fine_classes(datasets_cache):
    coarse, coarse_names = load_splits(DataSpec(dataset="trec"))
    fine, fine_names = load_splits(DataSpec(dataset="trec", label_column="fine_label"))
    assert len(coarse_names) == 6 and len(fine_names) == 50
    assert fine_names[:3] == ["ABBR:abb", "ABBR:exp", "ENTY:animal"] and fine_names[-1] == "NUM:weight"
    # the same questions in the same splits; each fine class lies inside its coarse class
    assert fine["test"]["text"][:] == coarse["test"]["text"][:] and len(fine["test"]) == 500
    pairs = list(zip(coarse["test"]["label"][:], fine["test"]["label"][:]))
    assert all(fine_names[f].split(":")[0] == coarse_names[c] for c, f in pairs)
    question = dict(zip(fine["test"]["text"][:], fine["test"]["label"][:]))
    when = next(text for text in question if text.startswith("When was") and "born" in text)
    assert fine_names[question[when]] == "NUM:date"
    assert len(set(fine["train"]["label"][:])) == 50


@pytest.fixture
def datasets_cache(tmp_path_factory):
    import datasets

    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


def test_recipes_select_label_sets_and_data_files(tmp_path, split_files):
    path = tmp_path / "r.yaml"
    path.write_text("data:\n  dataset: trec\n  label_column: fine_labels\n")
    with pytest.raises(
        RecipeError,
        match=r"r.yaml:\d: data: Column 'fine_labels' not found in embedded dataset 'trec'\. "
        r"Available columns: text, label, fine_label",
    ):
        load_recipe(str(path))
    path.write_text(
        textwrap.dedent(f"""
        data:
          data_files:
            train: {split_files["train"]}
            test: [{split_files["test"]}]
        """)
    )
    recipe = load_recipe(str(path))
    assert recipe.data.dataset == "csv" and recipe.data.data_files["test"] == [split_files["test"]]
    assert load_recipe(str(path)).to_dict()["data"]["data_files"]["train"] == split_files["train"]
