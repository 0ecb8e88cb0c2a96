"""The AG News recipes read the Hub dataset fancyzhx/ag_news, which is not available offline: `hf-rnn list` marks
them, and they are trained here, unchanged but for data.dataset, on a small local folder laid out as the Hub repo is
(data/train-*.parquet, data/test-*.parquet; columns text and a 4-class `label` ClassLabel)."""

import json
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from hf_rnn.cli import main
from hf_rnn.recipes import list_recipes, load_recipe, network_sources

AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]
TOPIC_WORDS = [
    "election minister war treaty embassy",
    "match goal season coach championship",
    "stocks profit market shares earnings",
    "software internet space computer research",
]
AG_NEWS_RECIPES = [name for name in list_recipes() if name.startswith("ag_news")]


@pytest.fixture(scope="module")
def local_ag_news(tmp_path_factory) -> Path:
    """A local copy of fancyzhx/ag_news in the Hub repo's layout, with the Hub's features."""
    folder = tmp_path_factory.mktemp("ag_news")
    features = Features({"text": Value("string"), "label": ClassLabel(names=AG_NEWS_LABELS)})
    for split, rows in (("train", 96), ("test", 24)):
        labels = [i % 4 for i in range(rows)]
        texts = [f"{TOPIC_WORDS[label]} report number {i}" for i, label in enumerate(labels)]
        dataset = Dataset.from_dict({"text": texts, "label": labels}, features=features)
        (folder / "data").mkdir(exist_ok=True)
        dataset.to_parquet(folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


def test_ag_news_recipes_are_marked_as_needing_the_network(capsys):
    assert AG_NEWS_RECIPES == ["ag_news_bigru", "ag_news_minilm_bigru"]
    assert main(["list"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    for name in list_recipes():
        marked = "[needs the network: Hub dataset 'fancyzhx/ag_news']" in listed[name]
        assert marked == (name in AG_NEWS_RECIPES), listed[name]


@pytest.mark.parametrize("name", AG_NEWS_RECIPES)
def test_ag_news_recipe_trains_on_a_local_copy(name, local_ag_news, tmp_path, capsys, monkeypatch):
    overrides = [
        f"data.dataset={local_ag_news}",
        "data.max_train_samples=64",
        "training.max_steps=4",
        "training.per_device_train_batch_size=16",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
        "training.save_strategy=steps",
    ]
    # a local copy needs no network
    assert network_sources(load_recipe(name, overrides=overrides)) == []
    monkeypatch.chdir(tmp_path)
    args = ["train", name, "--output-dir", "model"] + [arg for value in overrides for arg in ("--set", value)]
    assert main(args) == 0
    model = tmp_path / "model"
    config = json.loads((model / "config.json").read_text())
    assert list(config["id2label"].values()) == AG_NEWS_LABELS
    metrics = json.loads((model / "metrics.json").read_text())
    assert {"accuracy", "f1_macro"} <= set(metrics) and "roc_auc" not in metrics
    # the official test split is the test set: all 24 rows, not a slice carved out of train
    assert json.loads((model / "training_summary.json").read_text())["test_samples"] == 24
