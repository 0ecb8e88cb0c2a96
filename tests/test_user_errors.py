"""Reliability II: what a hostile but ordinary user gives gets a clear one-line message naming what to fix, a valid
result, or a refusal before anything is lost; never a traceback, a silently wrong model or a truncated file.

Each test is one class of input (see README, Reliability); the model-directory classes are in test_reliability.py.
"""

import json
import logging
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from test_reliability import one_error_line, recipe_file, run_cli
from transformers import TrainerCallback

from hf_rnn.data_checks import check_training_labels
from hf_rnn.recipes import RecipeError, load_recipe
from hf_rnn.training import train


def write(folder, text: str, name: str = "recipe.yaml") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# --- recipes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "{}\n"])
def test_an_empty_recipe_is_refused_not_trained_with_every_default(tmp_path, text):
    with pytest.raises(RecipeError, match=r"recipe.yaml: the recipe is empty, and would run with every default"):
        load_recipe(write(tmp_path, text))


def test_an_empty_model_file_is_refused(tmp_path):
    write(tmp_path, "", name="mine.yaml")
    with pytest.raises(RecipeError, match=r"mine.yaml: the model file is empty"):
        load_recipe(write(tmp_path, "extends: quickstart\nmodel: {base: mine.yaml}\n"))


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "extends: quickstart\ntraining:\n  seed: 1\n  seed: 2\n",
            r"recipe.yaml:4: duplicate key 'seed' \(first at line 3\)",
        ),
        (
            "extends: quickstart\ntraining:\n  seed: 1\ndata:\n  max_train_samples: 8\ntraining:\n  bf16: false\n",
            r"recipe.yaml:6: duplicate key 'training' \(first at line 2\)",
        ),
        ("extends: quickstart\nmodel:\n  frontend_config: {a: 1, a: 2}\n", r"recipe.yaml:3: duplicate key 'a'"),
    ],
    ids=["key", "section", "nested"],
)
def test_duplicate_keys_are_refused_naming_both_lines(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, text))


def test_recursive_and_exploding_yaml_aliases_are_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"recipe.yaml:2: a YAML alias refers to a mapping or list that holds it"):
        load_recipe(write(tmp_path, "extends: quickstart\nmodel: &a {x: *a}\n"))
    lines = ["extends: quickstart", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(RecipeError, match=r"recipe.yaml: the YAML aliases expand to more than 100,000 values"):
        load_recipe(write(tmp_path, "\n".join(lines) + "\n"))


def test_yaml_1_1_words_are_the_strings_the_user_meant(tmp_path):
    recipe = load_recipe(
        write(
            tmp_path,
            """
            extends: quickstart
            training: {eval_strategy: no, save_strategy: no, early_stopping_patience: null, bf16: off}
            hub: {language: no, private: yes}
            model: {bidirectional: on}
            """,
        )
    )
    assert recipe.training.eval_strategy == "no" and recipe.hub.language == "no"
    assert (
        recipe.training.bf16 is False and recipe.hub.private is True and recipe.model.config["bidirectional"] is True
    )
    # the same through --set, and the saved recipe reads back the same
    again = load_recipe("quickstart", overrides=["hub.language=no", "hub.private=yes"])
    assert again.hub.language == "no" and again.hub.private is True
    saved = tmp_path / "saved.yaml"
    saved.write_text(recipe.to_yaml())
    assert load_recipe(str(saved)).hub.language == "no"


def test_extends_finds_a_recipe_beside_the_file_without_its_suffix(tmp_path):
    write(tmp_path, "extends: quickstart\ntraining: {seed: 7}\n", name="my_base.yaml")
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    recipe = load_recipe(write(tmp_path, "extends: my_base\ntraining: {learning_rate: 0.01}\n"))
    assert recipe.training.seed == 7 and recipe.training.learning_rate == 0.01


@pytest.mark.parametrize(
    "override,message",
    [
        ("training.learning_rate=-1", r"^--set training.learning_rate: training: learning_rate must be positive"),
        ("training.eval_strategy=steps", r"^--set training.eval_strategy: training: eval_strategy 'steps' needs"),
        ("data.validation_size=2", r"^--set data.validation_size: data: validation_size=2.0 is out of range"),
        ("training.seed=[1", r"^--set training.seed: training.seed must be int, got '\[1'"),
    ],
)
def test_an_error_in_a_set_value_points_at_the_set(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("quickstart", overrides=[override])


@pytest.mark.parametrize(
    "metrics,message",
    [
        ("[accuracy, acuracy]", r"training.metrics: unknown metric 'acuracy'. Did you mean 'accuracy'\?"),
        ("[roc-auc]", r"unknown metric 'roc-auc'. Did you mean 'roc_auc'\?"),
    ],
)
def test_unknown_metric_names_are_named_as_unknown(tmp_path, metrics, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, f"extends: quickstart\ntraining:\n  metrics: {metrics}\n"))


def test_a_metric_evaluate_cannot_load_is_refused_before_any_data_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        RecipeError, match=r"recipe.yaml:3: training.metrics: unknown metric 'zzyzx_score': not one of"
    ):
        load_recipe(write(tmp_path, "extends: quickstart\ntraining:\n  metrics: [accuracy, zzyzx_score]\n"))


def test_an_absurd_model_size_is_refused_during_validation_naming_the_key(tmp_path):
    path = write(tmp_path, "extends: quickstart\nmodel:\n  hidden_size: 1000000000\n")
    with pytest.raises(
        RecipeError, match=r"recipe.yaml:3: model.hidden_size: too many parameters to count.*lower model"
    ):
        load_recipe(path)
    path = write(tmp_path, "extends: quickstart\nmodel:\n  embedding_dim: 50000000\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml:3: model.embedding_dim: about 1e\+12 parameters, needing"):
        load_recipe(path)
    assert load_recipe("quickstart", overrides=["model.num_layers=3"]).model.config["num_layers"] == 3


def test_a_non_utf8_set_value_is_named():
    with pytest.raises(RecipeError, match=r"^--set 'hub.language=\\udce9': not UTF-8"):
        load_recipe("quickstart", overrides=["hub.language=\udce9"])


# --- data files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,content,message",
    [
        (
            "bad.jsonl",
            '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c", "label": \n',
            r"bad.jsonl:3: not valid JSON \(Expecting value at column 24\)",
        ),
        ("list.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n', r"list.jsonl:2: a JSON list, not an object"),
        ("bad.csv", "text,label\na,x\nb,y\nc,x,extra\nd,y\n", r"bad.csv:4: 3 fields where the header has 2; quote"),
        ("bad.json", '[{"text": "a", "label": "x"},\n {"text": "b" "label": "y"}]\n', r"bad.json:2: not valid JSON"),
    ],
    ids=["jsonl", "jsonl-list", "csv-extra-field", "json"],
)
def test_a_broken_data_line_is_named_with_the_parser_reason(tmp_path, capsys, monkeypatch, name, content, message):
    (tmp_path / name).write_text(content)
    code, err = run_cli(
        "train", str(recipe_file(tmp_path, dataset=name)), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2
    assert re.search(message, one_error_line(err)), err
    assert not list(tmp_path.glob("hf_rnn_outputs/*"))  # a failed run before any checkpoint leaves no .partial


def test_single_label_training_data_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "one.csv").write_text("text,label\n" + "".join(f"text {i},pos\n" for i in range(40)))
    code, err = run_cli(
        "train", str(recipe_file(tmp_path, "one.csv")), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2
    assert "holds one label only ('pos', " in one_error_line(err)


def test_labels_missing_from_training_are_warned_about(caplog):
    splits = DatasetDict(
        {
            "train": Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]}),
            "validation": Dataset.from_dict({"text": ["d"], "label": [1]}),
            "test": Dataset.from_dict({"text": ["e", "f"], "label": [2, 2]}),
        }
    )
    with caplog.at_level(logging.WARNING, logger="hf_rnn"):
        check_training_labels(splits, ["neg", "pos", "rare"], "'data.csv'")
    assert "Labels 'rare' (2 rows) of the test split never appear in the training split of 'data.csv'" in caplog.text
    assert "validation" not in caplog.text


# --- texts --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user_errors")
    return train(load_recipe(str(recipe_file(folder))), output_dir=folder / "model").output_dir


def test_predict_output_that_is_an_input_is_refused_and_nothing_is_lost(model_dir, tmp_path, capsys, monkeypatch):
    texts = tmp_path / "in.txt"
    texts.write_text("a fine film\na dull film\n")
    (tmp_path / "link.txt").symlink_to(texts)
    before = {path: path.read_bytes() for path in [texts, *model_dir.iterdir()] if path.is_file()}
    cases = [
        ("--file", str(texts), "--output", str(texts)),
        ("--file", str(texts), "--output", "link.txt"),
        ("--file", str(texts), "--output", str(model_dir / "config.json")),
    ]
    for args in cases:
        code, err = run_cli("predict", str(model_dir), *args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
        assert code == 2 and "writing it would erase what is read" in one_error_line(err), err
    with texts.open() as stdin:  # hf-rnn predict DIR --output in.txt < in.txt
        monkeypatch.setattr("sys.stdin", stdin)
        code, err = run_cli(
            "predict", str(model_dir), "--output", "in.txt", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
        )
    assert code == 2 and "is the file stdin reads" in err
    assert {path: path.read_bytes() for path in before} == before


def test_a_failing_predict_leaves_an_existing_output_untouched(model_dir, tmp_path, capsys, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "tokenizer.json").unlink()
    (tmp_path / "out.jsonl").write_text("yesterday's results\n")
    code, err = run_cli(
        "predict", str(broken), "text", "--output", "out.jsonl", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2 and (tmp_path / "out.jsonl").read_text() == "yesterday's results\n"


def test_the_non_utf8_line_number_is_exact(model_dir, tmp_path, capsys, monkeypatch):
    lines = [f"line {i} of a long file with some words in it" for i in range(1, 6001)]
    data = "\n".join(lines).encode()
    position = data.index(b"line 5000 ")
    (tmp_path / "in.txt").write_bytes(data[:position] + b"caf\xe9 " + data[position:])
    code, err = run_cli(
        "predict",
        str(model_dir),
        "--file",
        "in.txt",
        "--output",
        "out.jsonl",
        cwd=tmp_path,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert "in.txt: line 5000 is not UTF-8 (invalid continuation byte at byte 4 of the line)" in one_error_line(err)


def test_closed_stdin_and_non_utf8_arguments_get_messages(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", None)  # what Python sees when the shell closed it: hf-rnn predict DIR <&-
    code, err = run_cli("predict", str(model_dir), cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "stdin is closed, so there are no texts to read" in one_error_line(err)
    # a Latin-1 byte on a UTF-8 command line reaches Python as a surrogate escape
    code, err = run_cli(
        "predict", str(model_dir), "fine", "caf\udce9", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 2 and "text argument 2 is not UTF-8" in one_error_line(err)


@pytest.mark.parametrize(
    "setup,args,message",
    [
        (lambda d: (d / "folder").mkdir(), ["--file", "folder"], "folder: Is a directory"),
        (lambda d: None, ["--file", "missing.txt"], "missing.txt: No such file or directory"),
        (lambda d: (d / "folder").mkdir(), ["x", "--output", "folder"], "folder: Is a directory"),
        (lambda d: None, ["x", "--output", "nowhere/out.jsonl"], "nowhere/out.jsonl: No such file or directory"),
    ],
    ids=["file-is-dir", "file-missing", "output-is-dir", "output-folder-missing"],
)
def test_os_errors_on_user_paths_exit_2(model_dir, tmp_path, capsys, monkeypatch, setup, args, message):
    setup(tmp_path)
    code, err = run_cli("predict", str(model_dir), *args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    assert one_error_line(err) == f"hf-rnn: error: {message}"


# --- output paths ---------------------------------------------------------------------------------------------------


def test_an_output_dir_that_is_a_file_is_refused_and_kept(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("my notes")
    for output in ("notes.txt", "notes.txt/model"):
        code, err = run_cli(
            "train",
            str(recipe_file(tmp_path)),
            "--output-dir",
            output,
            cwd=tmp_path,
            capsys=capsys,
            monkeypatch=monkeypatch,
        )
        assert code == 2 and "notes.txt is a file, so --output-dir" in one_error_line(err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "recipe.yaml"]
    assert (tmp_path / "notes.txt").read_text() == "my notes"


@pytest.mark.parametrize("output", [".", "..", "sub/.."])
def test_the_current_folder_as_output_dir_is_refused(tmp_path, capsys, monkeypatch, output):
    recipe = str(recipe_file(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run_cli("train", recipe, "--output-dir", output, cwd=empty, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and "is the current folder or holds it" in one_error_line(err), err
    assert not list(empty.iterdir())


# --- interruption ---------------------------------------------------------------------------------------------------


def test_a_partial_folder_without_checkpoint_does_not_block_another_recipe(tmp_path, capsys, monkeypatch):
    recipe = str(recipe_file(tmp_path, dataset="missing.csv"))
    code, err = run_cli("train", recipe, "--output-dir", "model", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2 and not (tmp_path / "model.partial").exists()
    # one left by a kill -9 before its first checkpoint: nothing to resume, so another recipe may start there
    (tmp_path / "model.partial").mkdir()
    (tmp_path / "model.partial" / "recipe.yaml").write_text("name: another\n")
    other = load_recipe(
        str(recipe_file(tmp_path)), overrides=["training.num_train_epochs=1", "data.max_train_samples=64"]
    )
    assert train(other, output_dir=tmp_path / "model").output_dir.is_dir()


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resuming_says_so_and_logs_the_whole_run_train_loss(tmp_path, caplog):
    recipe = load_recipe(str(recipe_file(tmp_path)))
    straight = json.loads((train(recipe, output_dir=tmp_path / "straight").output_dir / "history.json").read_text())
    with pytest.raises(KeyboardInterrupt):
        train(recipe, output_dir=tmp_path / "resumed", callbacks=[StopAt(12)])
    with caplog.at_level(logging.WARNING, logger="hf_rnn"):
        resumed = train(recipe, output_dir=tmp_path / "resumed").output_dir
    assert f"resuming from checkpoint-8 of {tmp_path / 'resumed.partial'}" in caplog.text
    history = json.loads((resumed / "history.json").read_text())
    [expected] = [entry["train_loss"] for entry in straight if "train_loss" in entry]
    [logged] = [entry["train_loss"] for entry in history if "train_loss" in entry]
    assert logged == pytest.approx(expected, rel=1e-4)


def test_every_file_of_a_model_directory_has_the_same_mode(model_dir):
    umask = os.umask(0)
    os.umask(umask)
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in model_dir.iterdir() if path.is_file()}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
