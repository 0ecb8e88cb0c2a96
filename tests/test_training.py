"""End to end: a tiny recipe trained through the real Trainer on a slice of the embedded IMDB data, then used
through pipeline, predict, eval and the CLI."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback, pipeline

import hf_rnn  # noqa: F401  (registers the model types for pipeline)
from hf_rnn.cli import main
from hf_rnn.recipes import load_recipe
from hf_rnn.training import predict, train

TINY_RECIPE = """
name: tiny
model:
  base: bilstm
  embedding_dim: 16
  hidden_size: 8
  classifier_hidden_sizes: [8]
tokenizer:
  max_tokens: 2000
  max_length: 48
data:
  dataset: imdb
  max_train_samples: 320
  max_eval_samples: 64
training:
  num_train_epochs: 2
  per_device_train_batch_size: 32
  learning_rate: 0.01
  logging_steps: 2
  early_stopping_patience: null
"""


def write_recipe(folder: Path, extra: str = "") -> str:
    path = folder / "tiny.yaml"
    path.write_text(textwrap.dedent(TINY_RECIPE) + textwrap.dedent(extra))
    return str(path)


def cli(*args: str, capsys, cwd: Path | None = None, monkeypatch=None) -> tuple[int, str, str]:
    """Runs `hf-rnn ARGS` in this process (the console script calls the same `main`), in `cwd` when given."""
    if cwd is not None:
        monkeypatch.chdir(cwd)
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse usage errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    result = train(load_recipe(write_recipe(folder)), output_dir=folder / "model")
    return result.output_dir


def test_output_directory_holds_everything(trained):
    names = {p.name for p in trained.iterdir()}
    expected = {"config.json", "model.safetensors", "tokenizer.json", "metrics.json", "history.json"}
    expected |= {"training_curves.png", "recipe.yaml", "training_summary.json", "modeling_rnn.py"}
    assert expected <= names
    assert not {"checkpoints", "training_args.bin"} & names  # no checkpoints, no pickles
    assert not trained.with_name("model.partial").exists()
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {"accuracy", "f1_macro", "roc_auc", "loss"} <= set(metrics)
    assert all(0 <= metrics[k] <= 1 for k in ("accuracy", "f1_macro", "roc_auc"))
    summary = json.loads((trained / "training_summary.json").read_text())
    assert summary["train_samples"] == 320 and summary["test_samples"] == 64
    assert summary["label_names"] == ["neg", "pos"]


def test_training_learns(trained):
    history = json.loads((trained / "history.json").read_text())
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) >= 4
    # loss falls from the first logged steps to the last ones
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    assert any("eval_accuracy" in h for h in history) and any("train_accuracy" in h for h in history)


def test_pipeline_agrees_with_the_model(trained):
    texts = ["A wonderful, moving film with great acting.", "Dull, boring and far too long.", ""]
    classifier = pipeline("text-classification", model=str(trained), device="cpu")
    model = AutoModelForSequenceClassification.from_pretrained(trained).eval()
    tokenizer = AutoTokenizer.from_pretrained(trained)
    for text, predicted in zip(texts, classifier(texts)):
        with torch.no_grad():
            logits = model(**tokenizer(text or " ", return_tensors="pt")).logits[0]
        assert predicted["label"] == model.config.id2label[int(logits.argmax())]
    streamed = list(predict(trained, texts, batch_size=2))
    assert [r["label"] for r in streamed] == [r["label"] for r in classifier(texts)]
    assert [r["text"] for r in streamed] == texts


def test_existing_model_directory_is_not_overwritten(trained):
    with pytest.raises(FileExistsError, match="already holds a trained model; pass --overwrite"):
        train(load_recipe(write_recipe(trained.parent)), output_dir=trained)


def test_a_folder_that_is_not_a_model_is_never_replaced(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "notes.txt").write_text("my notes")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="exists and is not a model directory"):
            train(load_recipe(write_recipe(tmp_path)), output_dir=tmp_path / "runs", overwrite=overwrite)
    assert (tmp_path / "runs" / "notes.txt").read_text() == "my notes"


def test_an_interrupted_run_resumes_only_with_the_same_recipe(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        # after the first checkpoint (step 10): a run stopped before it leaves nothing to resume, and no folder
        train(recipe, output_dir=tmp_path / "model", callbacks=[InterruptAt(12)])
    changed = load_recipe(write_recipe(tmp_path), overrides=["tokenizer.max_tokens=500"])
    with pytest.raises(FileExistsError, match="holds an interrupted run of a different recipe"):
        train(changed, output_dir=tmp_path / "model")
    result = train(changed, output_dir=tmp_path / "model", overwrite=True)
    assert json.loads((result.output_dir / "training_summary.json").read_text())["resumed_from_checkpoint"] is None


def test_gradient_accumulation_and_label_smoothing_keep_the_loss_scale(tmp_path):
    """The loss is a batch mean; with gradient accumulation the Trainer must not rescale it (a 4x loss was logged
    before `accepts_loss_kwargs = False`). Label smoothing still logs training accuracy."""
    overrides = ["training.gradient_accumulation_steps=4", "training.per_device_train_batch_size=8"]
    overrides += ["training.learning_rate=1e-6", "training.label_smoothing_factor=0.1", "training.logging_steps=1"]
    recipe = load_recipe(write_recipe(tmp_path), overrides=overrides + ["training.num_train_epochs=1"])
    history = json.loads((train(recipe, output_dir=tmp_path / "model").output_dir / "history.json").read_text())
    losses = [h["loss"] for h in history if "loss" in h]
    # an untrained binary classifier's cross-entropy is about ln 2 = 0.69
    assert losses and all(0.5 < loss < 0.9 for loss in losses)
    assert all("train_accuracy" in h for h in history if "loss" in h)


def test_length_grouped_sampler_reads_lengths_once_and_groups_batches(tmp_path):
    """The Trainer's length-grouped sampler gets the `length` column as a list (datasets 5 passes a lazy column that
    is re-read per index), and still yields batches of similar lengths in the same order as transformers' own."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from hf_rnn.configuration_rnn import LSTMConfig
    from hf_rnn.modeling_rnn import LSTMForSequenceClassification
    from hf_rnn.training import RecurrentTrainer

    lengths = torch.randint(1, 200, (512,), generator=torch.Generator().manual_seed(0)).tolist()
    dataset = Dataset.from_dict({"input_ids": [[1] * n for n in lengths], "label": [0] * 512, "length": lengths})
    model = LSTMForSequenceClassification(LSTMConfig(vocab_size=10, embedding_dim=4, hidden_size=4))
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        train_sampling_strategy="group_by_length",
        use_cpu=True,
        report_to="none",
    )
    orders = []
    for trainer_class in (Trainer, RecurrentTrainer):
        sampler = trainer_class(model=model, args=args, train_dataset=dataset)._get_train_sampler()
        torch.manual_seed(0)
        orders.append(list(sampler))
    assert isinstance(sampler.lengths, list)
    assert orders[0] == orders[1] and sorted(orders[1]) == list(range(512))
    batches = [[lengths[i] for i in orders[1][start : start + 16]] for start in range(0, 512, 16)]
    # within a batch, lengths are sorted (descending) except the longest example swapped to the front
    assert sum(batch[1:] == sorted(batch[1:], reverse=True) for batch in batches) == len(batches)


class InterruptAt(TrainerCallback):
    """Stops the process-level run at a given step, as a Ctrl-C would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_after_interruption_continues_from_the_checkpoint(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, "\n"), overrides=["training.num_train_epochs=3"])
    output = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        train(recipe, output_dir=output, callbacks=[InterruptAt(14)])  # epoch 1 ends at step 10
    assert not output.exists()
    assert (tmp_path / "model.partial" / "checkpoints" / "checkpoint-10").is_dir()
    train(recipe, output_dir=output)
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["resumed_from_checkpoint"] == "checkpoint-10"
    assert summary["global_steps"] == 30


def test_same_seed_gives_identical_results(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path), overrides=["training.num_train_epochs=1"])
    first = train(recipe, output_dir=tmp_path / "a")
    second = train(recipe, output_dir=tmp_path / "b")
    assert first.metrics == second.metrics
    inputs = {"input_ids": torch.tensor([[5, 9, 14, 3, 7]])}
    logits = [
        AutoModelForSequenceClassification.from_pretrained(r.output_dir)(**inputs).logits for r in (first, second)
    ]
    assert torch.equal(*logits)


def test_bf16_predict_and_eval_agree_with_fp32(trained, tmp_path, capsys, monkeypatch):
    """`--bf16` runs predict and eval under bf16 autocast: scores move a little, labels and accuracy barely, and
    autocast does not stay on in the caller's code between streamed results."""
    texts = [f"{word} film, {word} acting and a {word} story" for word in ("great", "awful", "fine", "dull")] * 8
    fp32 = list(predict(trained, texts))
    bf16 = []
    for result in predict(trained, texts, bf16=True):
        assert not torch.is_autocast_enabled("cpu")
        bf16.append(result)
    assert [r["text"] for r in bf16] == texts
    assert sum(a["label"] == b["label"] for a, b in zip(fp32, bf16)) >= len(texts) - 2
    assert max(abs(a["score"] - b["score"]) for a, b in zip(fp32, bf16) if a["label"] == b["label"]) < 0.05

    code, out, err = cli("eval", str(trained), "--bf16", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    expected = json.loads((trained / "metrics.json").read_text())["accuracy"]
    assert json.loads(out)["accuracy"] == pytest.approx(expected, abs=0.05)


def test_cli_predict_eval_and_card(trained, tmp_path, capsys, monkeypatch):
    code, out, err = cli(
        "predict", str(trained), "great movie", "terrible movie", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["great movie", "terrible movie"]
    assert all(r["label"] in {"neg", "pos"} and 0.5 <= r["score"] <= 1 for r in rows)

    (tmp_path / "texts.txt").write_text("one fine film\n\nanother one 😀 ünïcode\n")
    code, out, err = cli(
        "predict",
        str(trained),
        "--file",
        "texts.txt",
        "--output",
        "out.csv",
        cwd=tmp_path,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    assert len((tmp_path / "out.csv").read_text().strip().splitlines()) == 4  # header + 3 rows

    code, out, err = cli("eval", str(trained), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    expected = json.loads((trained / "metrics.json").read_text())["accuracy"]
    assert json.loads(out)["accuracy"] == pytest.approx(expected)

    # a data file is evaluated whole, even when it holds only some of the model's labels
    (tmp_path / "pos.csv").write_text("text,label\n" + "".join(f"a lovely film number {i},pos\n" for i in range(30)))
    code, out, err = cli(
        "eval", str(trained), "--data", "pos.csv", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert json.loads(out)["accuracy"] in {i / 30 for i in range(31)}

    (trained / "README.md").unlink()
    code, out, err = cli("card", str(trained), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and (trained / "README.md").read_text().startswith("---")


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["train", "no_such_recipe"], 2, "recipe 'no_such_recipe' not found"),
        (["train", "quickstart", "--set", "training.learnin_rate=1"], 2, "Did you mean 'learning_rate'"),
        (["eval", "not_a_dir"], 2, "not_a_dir is not a model directory"),
        (["predict", "not_a_dir", "x"], 2, "not_a_dir is not a model directory"),
        (["summary", "bilstm_3layer"], 2, "Did you mean 'bilstm_2layer'"),
        (["push", "not_a_dir", "user/repo"], 2, "not_a_dir"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, args, code, message):
    returned, _, err = cli(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert returned == code
    assert message in err
    assert "Traceback" not in err


def test_console_script_exit_code_and_one_line_error(tmp_path):
    """The installed `hf-rnn` command itself: a bad recipe is one line on stderr and exit code 2."""
    (tmp_path / "bad.yaml").write_text("training:\n  epochs: 3\n")
    result = subprocess.run(
        ["hf-rnn", "train", "bad.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hf-rnn: error: ")
    assert "bad.yaml:2: unknown key 'epochs' in training. Did you mean 'num_train_epochs'?" in lines[0]


def test_cli_list_and_summary(tmp_path, capsys, monkeypatch):
    code, out, _ = cli("list", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "quickstart" in out and "imdb" in out
    code, out, _ = cli("summary", "bilstm", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "Bidirectional(LSTM)" in out and "Total params" in out


def test_data_parallel_training_with_accelerate(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU-only machine runs DDP over gloo (hf_rnn sets
    `use_cpu` when there is no accelerator) and saves exactly one model."""
    recipe = write_recipe(tmp_path, "\n")
    script = Path(__file__).parent.parent / "scripts" / "train.py"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script), recipe]
    command += ["--output-dir", str(tmp_path / "ddp"), "--set", "training.num_train_epochs=1"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()
    summary = json.loads((tmp_path / "ddp" / "training_summary.json").read_text())
    # two processes share each epoch: 320 rows / (2 processes x 32) = 5 steps
    assert summary["world_size"] == 2 and summary["global_steps"] == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ddp")) == ["ddp"]
