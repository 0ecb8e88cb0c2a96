"""Pushing model directories to the (fake, local) Hub: one commit, our card, no junk, no token anywhere, and a pushed
model that loads with and without hf_rnn installed."""

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from fake_hub import FAKE_TOKEN, FakeHub
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError
from test_cards import make_model_dir
from test_remote_code import BLOCK_HF_RNN
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from hf_rnn.cards import write_model_card
from hf_rnn.hub import check_model_dir, push_model
from hf_rnn.recipes import recipe_from_dict
from hf_rnn.training import train

REPO = "fake-user/tiny-lstm"
TEXTS = ["a wonderful, moving film", "dull and far too long", "the plot made no sense at all"]
UPLOADED = {
    ".gitattributes",
    "README.md",
    "config.json",
    "configuration_rnn.py",
    "history.json",
    "metrics.json",
    "model.safetensors",
    "modeling_rnn.py",
    "modeling_rnn_embeddings.py",
    "recipe.yaml",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_curves.png",
    "training_summary.json",
}


@pytest.fixture(scope="module")
def built_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("hub") / "model")


@pytest.fixture
def model_dir(built_dir, tmp_path) -> Path:
    """A fresh copy per test: pushing may write README.md."""
    return shutil.copytree(built_dir, tmp_path / "model")


def start_remote_code_loader(repo: str, fake_hub: FakeHub, cwd: Path) -> subprocess.Popen:
    """A fresh interpreter that cannot import hf_rnn: it imports transformers right away, waits for a line on stdin,
    then loads `repo` with `trust_remote_code=True` and prints the Auto class's logits and the pipeline's
    predictions for TEXTS as JSON."""
    code = textwrap.dedent(
        f"""
        import json, sys, torch
        # PreTrainedModel: import the heavy modules the remote code needs before waiting, not after
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, pipeline
        sys.stdin.readline()  # the model is on the Hub now
        model = AutoModelForSequenceClassification.from_pretrained({repo!r}, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained({repo!r}, trust_remote_code=True)
        with torch.no_grad():
            logits = model(**tokenizer({TEXTS!r}, padding=True, truncation=True, return_tensors="pt")).logits
        classifier = pipeline("text-classification", model={repo!r}, trust_remote_code=True)
        print(json.dumps({{"logits": logits.tolist(), "pipeline": classifier({TEXTS!r}),
                          "module": type(model).__module__}}))
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", BLOCK_HF_RNN + code],
        cwd=cwd,
        env=fake_hub.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def predictions(model_or_repo: str) -> tuple[torch.Tensor, list[dict], str]:
    """Logits of the Auto class, the pipeline's predictions and the model class's module, in this process."""
    model = AutoModelForSequenceClassification.from_pretrained(model_or_repo).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_or_repo)
    with torch.no_grad():
        logits = model(**tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")).logits
    return logits, pipeline("text-classification", model=model_or_repo)(TEXTS), type(model).__module__


def test_trained_model_round_trip(fake_hub: FakeHub, tmp_path):
    # the remote-code interpreter imports transformers while the model trains
    loader = start_remote_code_loader(REPO, fake_hub, tmp_path)
    recipe = recipe_from_dict(
        {
            "name": "tiny_imdb",
            "model": {"type": "lstm", "embedding_dim": 8, "hidden_size": 8, "bidirectional": True},
            "tokenizer": {"max_tokens": 300, "max_length": 24},
            "data": {"dataset": "imdb", "max_train_samples": 48, "max_eval_samples": 16},
            "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16, "early_stopping_patience": None},
            "hub": {"repo_id": REPO},
        }
    )
    model_dir = train(recipe, output_dir=tmp_path / "model").output_dir
    assert push_model(model_dir, REPO) == f"{fake_hub.url}/{REPO}"
    loader.stdin.write("go\n")
    loader.stdin.flush()

    assert set(fake_hub.files(REPO)) == UPLOADED
    assert len(fake_hub.repo(REPO).commits) == 2  # the Hub's initial commit, then everything in one
    card = ModelCard.load(REPO)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == metrics
    assert fake_hub.file(REPO, "README.md").decode() == (model_dir / "README.md").read_text()
    assert f'model="{REPO}"' in card.text

    expected_logits, expected, _ = predictions(str(model_dir))
    # with hf_rnn imported (as here), the Hub copy loads without remote code
    logits, predicted, module = predictions(REPO)
    assert module == "hf_rnn.modeling_rnn" and predicted == expected
    torch.testing.assert_close(logits, expected_logits)
    # without hf_rnn, it loads with remote code and predicts the same
    stdout, stderr = loader.communicate(timeout=300)
    assert loader.returncode == 0, stderr[-3000:]
    got = json.loads(stdout.strip().splitlines()[-1])
    assert got["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(got["logits"]), expected_logits)
    assert [p["label"] for p in got["pipeline"]] == [p["label"] for p in expected]
    assert [p["score"] for p in got["pipeline"]] == pytest.approx([p["score"] for p in expected])


def test_one_commit_with_the_card_and_without_junk(fake_hub: FakeHub, model_dir):
    (model_dir / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (model_dir / "checkpoints" / "checkpoint-4" / "model.safetensors").write_bytes(b"old weights")
    (model_dir / "training_args.bin").write_bytes(b"a pickle")
    (model_dir / ".DS_Store").write_bytes(b"junk")
    assert not (model_dir / "README.md").exists()

    push_model(model_dir, REPO, commit_message="first version")

    assert set(fake_hub.files(REPO)) == UPLOADED
    commits = fake_hub.repo(REPO).commits
    assert len(commits) == 2 and commits[-1].message == "first version"
    # the missing card was written for this repo, locally and on the Hub
    readme = (model_dir / "README.md").read_text()
    assert f'model="{REPO}"' in readme and fake_hub.file(REPO, "README.md").decode() == readme
    assert fake_hub.file(REPO, "model.safetensors") == (model_dir / "model.safetensors").read_bytes()


def test_generated_card_is_updated_but_an_edited_one_is_kept(fake_hub: FakeHub, model_dir):
    write_model_card(model_dir)  # as `hf-rnn train` writes it, without a repo id
    push_model(model_dir, REPO)
    assert f'model="{REPO}"' in fake_hub.file(REPO, "README.md").decode()

    edited = (model_dir / "README.md").read_text().replace("## Limitations", "## Limitations\n\nMy own words.")
    (model_dir / "README.md").write_text(edited)
    push_model(model_dir, "fake-user/other")
    assert fake_hub.file("fake-user/other", "README.md").decode() == edited
    assert (model_dir / "README.md").read_text() == edited


def test_revision_and_private(fake_hub: FakeHub, model_dir):
    push_model(model_dir, REPO, private=True, revision="experiment")
    assert fake_hub.repo(REPO).private
    assert set(fake_hub.files(REPO, revision="experiment")) == UPLOADED
    assert set(fake_hub.files(REPO, revision="main")) == {".gitattributes"}
    assert fake_hub.file(REPO, "README.md", revision="experiment") == (model_dir / "README.md").read_bytes()

    fake_hub.create_repo("fake-user/public")
    with pytest.raises(ValueError, match="fake-user/public already exists and is public"):
        push_model(model_dir, "fake-user/public", private=True)
    assert set(fake_hub.files("fake-user/public")) == {".gitattributes"}


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "model.safetensors").unlink(), r"missing model\.safetensors"),
        (lambda d: [(d / n).unlink() for n in ("modeling_rnn.py", "tokenizer_config.json")], "missing modeling_rnn"),
        (lambda d: shutil.rmtree(d), "is not a directory"),
        (lambda d: (d / "config.json").write_text('{"model_type": "bert"}'), "model_type 'bert' is not an hf_rnn"),
        (
            lambda d: (d / "config.json").write_text('{"model_type": "hf_lstm", "auto_map": {"AutoConfig": "x"}}'),
            "auto_map lacks AutoModel, ",
        ),
    ],
)
def test_invalid_model_dir(fake_hub: FakeHub, model_dir, breakage, message):
    breakage(model_dir)
    with pytest.raises(ValueError, match=message):
        push_model(model_dir, REPO)
    assert fake_hub.requests == []  # refused before talking to the Hub


def test_only_hf_rnn_own_remote_code_is_pushed(fake_hub: FakeHub, model_dir):
    """Whoever loads the repo with trust_remote_code=True runs its .py files: a changed modeling_rnn.py is refused
    before anything is uploaded, and other Python files in the folder are never uploaded."""
    (model_dir / "my_notes.py").write_text("print('scratch')\n")
    push_model(model_dir, REPO)
    assert set(fake_hub.files(REPO)) == UPLOADED and "my_notes.py" not in fake_hub.files(REPO)

    requests = len(fake_hub.requests)
    modeling = model_dir / "modeling_rnn.py"
    modeling.write_text(modeling.read_text() + "\nimport os\n")
    with pytest.raises(ValueError, match=r"modeling_rnn\.py differs from the installed hf_rnn"):
        push_model(model_dir, "fake-user/other")
    assert len(fake_hub.requests) == requests


def test_valid_model_dir_passes_the_check(model_dir):
    assert check_model_dir(str(model_dir)) == model_dir


def test_token_never_leaks(fake_hub: FakeHub, model_dir, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    push_model(model_dir, REPO)  # token from HF_TOKEN
    push_model(model_dir, "fake-user/explicit", token=FAKE_TOKEN)
    assert fake_hub.tokens_seen() == {FAKE_TOKEN}

    # a wrong token: the Hub refuses it, and the error does not repeat it
    previous, fake_hub.token = fake_hub.token, "hf_the_only_valid_token"
    try:
        with pytest.raises(HfHubHTTPError) as error:
            push_model(model_dir, "fake-user/refused", token=FAKE_TOKEN)
    finally:
        fake_hub.token = previous
    assert error.value.response.status_code == 401

    captured = capsys.readouterr()
    texts = [str(error.value), repr(error.value), caplog.text, captured.out, captured.err]
    texts += [content.decode("utf-8", "replace") for content in fake_hub.files(REPO).values()]
    texts += [path.read_text("utf-8", "replace") for path in model_dir.iterdir() if path.is_file()]
    assert not [text for text in texts if FAKE_TOKEN in text]


def test_a_file_holding_the_token_is_not_pushed(fake_hub: FakeHub, model_dir):
    recipe = (model_dir / "recipe.yaml").read_text()
    (model_dir / "recipe.yaml").write_text(recipe + f"# token: {FAKE_TOKEN}\n")
    with pytest.raises(ValueError, match="recipe.yaml contains your Hugging Face token") as error:
        push_model(model_dir, REPO)
    assert FAKE_TOKEN not in str(error.value)
    assert fake_hub.requests == []


def test_a_card_overwritten_on_the_hub_is_an_error(fake_hub: FakeHub, model_dir, monkeypatch):
    create_commit = HfApi.create_commit

    def create_commit_then_overwrite_card(self, repo_id, operations, **kwargs):
        # what `model.push_to_hub` would do after our commit: replace README.md with a generic card
        info = create_commit(self, repo_id, operations, **kwargs)
        create_commit(self, repo_id, [CommitOperationAdd("README.md", b"# Model card\n")], commit_message="card")
        return info

    monkeypatch.setattr(HfApi, "create_commit", create_commit_then_overwrite_card)
    with pytest.raises(RuntimeError, match="README.md of fake-user/tiny-lstm \\(main\\) on the Hub is not"):
        push_model(model_dir, REPO)
