"""Reliability and security: bad input gives one clear line (exit 2 for usage/config errors, 1 for failures while
running), interrupted work loses nothing, and files from strangers cannot run code."""

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, TrainerCallback

import hf_rnn
from hf_rnn.cli import main
from hf_rnn.recipes import load_recipe
from hf_rnn.training import NonFiniteLossError, predict, train

RECIPE = """
name: tiny
model:
  base: bigru
  embedding_dim: 16
  hidden_size: 8
  classifier_hidden_sizes: []
tokenizer:
  max_tokens: 1500
  max_length: 40
data:
  dataset: {dataset}
  text_column: {text_column}
  max_train_samples: 256
  max_eval_samples: 64
training:
  num_train_epochs: 2
  per_device_train_batch_size: 32
  logging_steps: 2
  early_stopping_patience: null
"""


def recipe_file(folder: Path, dataset: str = "imdb", text_column: str = "text") -> Path:
    path = folder / "recipe.yaml"
    path.write_text(textwrap.dedent(RECIPE).format(dataset=dataset, text_column=text_column))
    return path


def run_cli(*args: str, cwd: Path, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    try:
        code = main(list(args))
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The single `hf-rnn: error:` line of stderr (progress bars may come before it), and no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("hf-rnn: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reliability")
    return train(load_recipe(str(recipe_file(folder))), output_dir=folder / "model").output_dir


# --- bad data ---------------------------------------------------------------------------------------------------


def write_csv(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    "csv,encoding,text_column,message",
    [
        ("review,label\nfine,pos\nbad,neg\n", "utf-8", "text", r"'text'.*Available columns: review, label"),
        ("text,label\n", "utf-8", "text", r"holds data rows|no rows|is empty"),
        ("text,label\ncaf\xe9 au lait,pos\nnice,neg\n", "latin-1", "text", r"not (valid )?UTF-8"),
    ],
    ids=["missing-column", "empty", "not-utf8"],
)
def test_bad_data_files_fail_with_one_line(tmp_path, capsys, monkeypatch, csv, encoding, text_column, message):
    data = write_csv(tmp_path, "data.csv", csv, encoding)
    recipe = recipe_file(tmp_path, dataset=str(data), text_column=text_column)
    code, err = run_cli("train", str(recipe), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    assert one_error_line(err)
    assert re.search(message, err), err


def test_unknown_labels_at_eval_time(model_dir, tmp_path, capsys, monkeypatch):
    data = write_csv(
        tmp_path, "other.csv", "text,label\n" + "".join(f"text {i},{['pos', 'meh'][i % 2]}\n" for i in range(40))
    )
    code, err = run_cli(
        "eval", str(model_dir), "--data", str(data), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2
    assert "labels ['meh'] are not known to the model; it predicts ['neg', 'pos']" in err


def test_awkward_texts_predict_without_crashing(model_dir):
    texts = [
        "",
        "   \t ",
        "zzqx qqwv vvkx",
        "good " * 200_000,
        "Great film! 🎬🍿 очень хорошо 非常好 ممتاز",
        "\x00\x01",
    ]
    results = list(predict(model_dir, texts, batch_size=4))
    assert [r["text"] for r in results] == texts
    assert all(r["label"] in {"neg", "pos"} and 0 <= r["score"] <= 1 for r in results)


# --- bad model directories ---------------------------------------------------------------------------------------


def _edit_config(**changes):
    def edit(folder: Path):
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))

    return edit


def _truncate_weights(folder: Path):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def _pickle_weights(folder: Path):
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()


def _rename_tensors(folder: Path):
    weights = load_file(folder / "model.safetensors")
    save_file({f"old.{key}": value for key, value in weights.items()}, folder / "model.safetensors")


def _grow_tokenizer(folder: Path):
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"extra{i}" for i in range(2000)])
    tokenizer.save_pretrained(folder)


MODEL_DIR_CASES = [
    (lambda d: (d / "config.json").unlink(), "is not a model directory: it has no config.json"),
    (lambda d: (d / "config.json").write_text("{oops"), "config.json is not valid JSON"),
    (_edit_config(pooling="median"), "config.json holds an invalid value: Field 'pooling' expected one of"),
    (_edit_config(hidden_size=-3), "config.json holds an invalid value: hidden_size must be a positive integer"),
    (lambda d: (d / "model.safetensors").unlink(), "has no weights (model.safetensors is missing)"),
    (_truncate_weights, "model.safetensors is not a readable safetensors file"),
    (
        _edit_config(hidden_size=12),
        "has shape [24] but config.json describes [36]; the config and the weights do not belong together",
    ),
    (_pickle_weights, "holds only pickled weights (pytorch_model.bin), which can run code"),
    (_edit_config(num_layers=2), "model.safetensors lacks 8 of the model's 19 tensors (backbone.layers.1."),
    (_rename_tensors, "model.safetensors lacks 11 of the model's 11 tensors"),
    (
        _edit_config(model_type="hf_transformer"),
        "'hf_transformer' is not an hf_rnn model type (hf_rnn, hf_lstm, hf_gru)",
    ),
    (lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer.json; copy it from the training output"),
    (lambda d: (d / "tokenizer.json").write_text('{"model": '), "tokenizer.json does not load"),
    (_grow_tokenizer, "token ids but the model's embedding only"),
]


@pytest.mark.parametrize(
    "damage,message",
    MODEL_DIR_CASES,
    ids=[
        *("no-config", "bad-json", "bad-value", "bad-range", "no-weights", "truncated", "shapes", "pickle"),
        *("fewer-layers", "no-name-matches", "unknown-type", "no-tokenizer", "bad-tokenizer", "big-tokenizer"),
    ],
)
def test_broken_model_directories(model_dir, tmp_path, capsys, monkeypatch, damage, message):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    damage(broken)
    code, err = run_cli("predict", str(broken), "text", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    assert message in err, err
    assert one_error_line(err)


@pytest.mark.parametrize("command", ["eval", "summary", "card", "push"])
def test_every_command_reads_model_directories_with_the_same_messages(
    model_dir, tmp_path, capsys, monkeypatch, command
):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    _edit_config(model_type="hf_transformer")(broken)
    args = {"push": ["push", str(broken), "me/model"]}.get(command, [command, str(broken)])
    code, err = run_cli(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    assert "'hf_transformer' is not an hf_rnn model type (hf_rnn, hf_lstm, hf_gru)" in one_error_line(err)


def test_eval_writes_nothing_into_the_model_directory(model_dir, tmp_path, capsys, monkeypatch):
    """A model directory may be read-only (a shared folder, a Hub cache): evaluating it must not write there."""
    data = write_csv(
        tmp_path, "few.csv", "text,label\n" + "".join(f"text {i},{['pos', 'neg'][i % 2]}\n" for i in range(8))
    )
    before = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*"))
    code, err = run_cli(
        "eval", str(model_dir), "--data", str(data), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert sorted(p.relative_to(model_dir) for p in model_dir.rglob("*")) == before


def test_pickled_weights_load_only_when_allowed(model_dir, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(model_dir, folder)
    _pickle_weights(folder)
    expected = list(predict(model_dir, ["a fine film"]))
    assert list(predict(folder, ["a fine film"], allow_pickle=True)) == expected


# --- numerical failure --------------------------------------------------------------------------------------------


class PoisonWeights(TrainerCallback):
    """Turns the classifier's weights into NaN after a given step, as a diverging run would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                model.classifier.layers[-1].weight.fill_(float("nan"))


def test_nan_loss_stops_training_naming_the_step(tmp_path):
    recipe = load_recipe(str(recipe_file(tmp_path)), overrides=["training.num_train_epochs=3"])
    with pytest.raises(NonFiniteLossError, match=r"training loss became nan at step 1[02]"):
        train(recipe, output_dir=tmp_path / "model", callbacks=[PoisonWeights(9)])
    # the checkpoint of the last good epoch (8 steps) is kept for inspection or a retry with other settings
    assert (tmp_path / "model.partial" / "checkpoints" / "checkpoint-8" / "model.safetensors").is_file()
    assert not (tmp_path / "model").exists()


# --- interrupted work -----------------------------------------------------------------------------------------------


def test_kill_9_then_same_command_resumes(tmp_path):
    """A real `kill -9` of `hf-rnn train` mid-run; the same command again resumes and ends like an uninterrupted
    run."""
    recipe = recipe_file(tmp_path)
    recipe.write_text(recipe.read_text().replace("num_train_epochs: 2", "num_train_epochs: 4"))
    command = ["hf-rnn", "train", str(recipe), "--output-dir", "killed"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed.partial" / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("training finished before it could be interrupted")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed").exists()  # no half-written model directory

    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((tmp_path / "killed" / "training_summary.json").read_text())
    assert summary["resumed_from_checkpoint"] is not None and summary["global_steps"] == 32

    straight = train(load_recipe(str(recipe)), output_dir=tmp_path / "straight")
    killed_metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert killed_metrics["accuracy"] == pytest.approx(straight.metrics["accuracy"], abs=0.05)


def test_incomplete_checkpoint_is_not_resumed_from(tmp_path):
    recipe = load_recipe(str(recipe_file(tmp_path)))
    with pytest.raises(KeyboardInterrupt):
        train(recipe, output_dir=tmp_path / "model", callbacks=[StopAt(12)])
    checkpoints = tmp_path / "model.partial" / "checkpoints"
    # a kill during the next save leaves a checkpoint folder without its trainer state
    partial = checkpoints / "checkpoint-12"
    shutil.copytree(checkpoints / "checkpoint-8", partial)
    (partial / "trainer_state.json").unlink()
    result = train(recipe, output_dir=tmp_path / "model")
    summary = json.loads((result.output_dir / "training_summary.json").read_text())
    assert summary["resumed_from_checkpoint"] == "checkpoint-8"


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


# --- security ---------------------------------------------------------------------------------------------------

FORBIDDEN_MODULES = {"os", "sys", "subprocess", "socket", "requests", "urllib", "http", "shutil", "pathlib", "pickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "open", "__import__", "breakpoint", "input"}


@pytest.mark.parametrize("name", ["modeling_rnn.py", "modeling_rnn_embeddings.py", "configuration_rnn.py"])
def test_remote_code_files_are_the_package_files_and_are_inert(model_dir, name):
    """The files saved for trust_remote_code are byte-for-byte hf_rnn's own, with no network, process, file-system
    or dynamic-code access."""
    package_file = Path(hf_rnn.__file__).parent / name
    assert (model_dir / name).read_bytes() == package_file.read_bytes()
    tree = ast.parse(package_file.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & FORBIDDEN_MODULES
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.split(".")[0] not in FORBIDDEN_MODULES
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{name} calls {node.func.id}()"


def test_model_directory_holds_no_pickles(model_dir):
    assert not [p.name for p in model_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]


def test_runtime_failure_is_exit_code_1_with_one_line(tmp_path, capsys, monkeypatch):
    """A failure while running, not caused by a bad recipe or argument, is exit code 1 with one line."""
    cross_entropy = torch.nn.functional.cross_entropy
    # a diverging run: from some point on every loss is NaN, and training stops on it
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: cross_entropy(*a, **k) * float("nan"))
    code, err = run_cli("train", str(recipe_file(tmp_path)), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert one_error_line(err).startswith("hf-rnn: error: NonFiniteLossError: training loss became nan at step 2")


def test_an_output_path_through_a_file_is_a_user_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "occupied").write_text("a file where the output folder should go")
    recipe = recipe_file(tmp_path)
    code, err = run_cli(
        "train", str(recipe), "--output-dir", "occupied/model", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2
    assert one_error_line(err).startswith("hf-rnn: error: occupied is a file, so --output-dir occupied/model cannot")
    assert (tmp_path / "occupied").read_text() == "a file where the output folder should go"
