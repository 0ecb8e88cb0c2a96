"""`hf-rnn search`: a real optuna study in SQLite over tiny trials of the real Trainer; it resumes after `kill -9`,
and its best recipe trains. The `search:` section is validated like every other section."""

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from hf_rnn.cli import main
from hf_rnn.recipes import RecipeError, load_recipe

RECIPE = """
model:
  type: gru
  embedding_dim: 8
  hidden_size: 8
tokenizer:
  max_tokens: 500
  max_length: 32
data:
  dataset: imdb
  max_train_samples: 64
  max_eval_samples: 32
training:
  max_steps: {steps}
  per_device_train_batch_size: 16
  logging_steps: 2
  eval_strategy: steps
  eval_steps: 2
  save_strategy: steps
  early_stopping_patience: null
search:
  metric: accuracy
  params:
    training.learning_rate: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
    model.hidden_size: {{type: categorical, choices: [4, 8]}}
    model.classifier_hidden_sizes: {{type: categorical, choices: [[], [8]]}}
"""


def write(folder: Path, steps: int = 4) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(textwrap.dedent(RECIPE).format(steps=steps))
    return path


def trials_by_state(output_dir: Path) -> dict[str, list[int]]:
    storage = f"sqlite:///{output_dir / 'study.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    states: dict[str, list[int]] = {}
    for trial in study.get_trials(deepcopy=False):
        states.setdefault(trial.state.name, []).append(trial.number)
    return states


def raw_states(database: Path) -> set[str]:
    """Trial states read straight from SQLite: opening the study with optuna while the search creates its tables
    races with it."""
    if not database.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            states = {state for (state,) in connection.execute("SELECT state FROM trials")}
            drawn = "SELECT 1 FROM trials JOIN trial_params USING (trial_id) WHERE state = 'RUNNING'"
            return states | ({"RUNNING with parameters"} if connection.execute(drawn).fetchone() else set())
    except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
        return set()


def test_search_runs_and_its_best_recipe_trains(tmp_path, capsys, monkeypatch):
    recipe = write(tmp_path)
    out = tmp_path / "search"
    assert main(["search", str(recipe), "--trials", "3", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("trial ")]
    assert table[0].split() == [
        "trial",
        "state",
        "eval_accuracy",
        "model.classifier_hidden_sizes",
        "model.hidden_size",
        "training.learning_rate",
        "time",
    ]
    assert trials_by_state(out) == {"COMPLETE": [0, 1, 2]}
    results = json.loads((out / "search_results.json").read_text())
    best = max(results["trials"], key=lambda trial: trial["value"])
    assert f"Best trial {best['number']}: eval_accuracy {best['value']:.4f}" in printed
    assert (out / "search_plot.png").stat().st_size > 0

    # the best recipe is complete and carries the best trial's values
    best_recipe = load_recipe(str(out / "best_recipe.yaml"))
    assert best_recipe.search is None and best_recipe.name == "tiny_best"
    assert best_recipe.training.learning_rate == best["params"]["training.learning_rate"]
    assert best_recipe.model.config["hidden_size"] == best["params"]["model.hidden_size"]
    assert best_recipe.model.config["classifier_hidden_sizes"] == json.loads(
        best["params"]["model.classifier_hidden_sizes"]
    )
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(out / "best_recipe.yaml"), "--output-dir", "best"]) == 0
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["hidden_size"] == best["params"]["model.hidden_size"]

    # a finished study is not extended: asking for the same number of trials runs none
    assert main(["search", str(recipe), "--trials", "3", "--output-dir", str(out)]) == 0
    assert trials_by_state(out) == {"COMPLETE": [0, 1, 2]}


def test_a_killed_search_resumes_with_its_finished_trials(tmp_path, caplog):
    recipe = write(tmp_path, steps=8)
    out = tmp_path / "search"
    command = [sys.executable, "-m", "hf_rnn.cli", "search", str(recipe), "--trials", "3", "--output-dir", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            # kill once a finished trial exists and the next one has drawn its parameters (it is training)
            if {"COMPLETE", "RUNNING with parameters"} <= raw_states(out / "study.db"):
                break
            assert process.poll() is None, "the search ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("the search did not reach its second trial in time")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = trials_by_state(out)
    killed = before["RUNNING"][0]
    assert (out / "search.lock").exists()

    # the rerun keeps the finished trials, fails the killed one and tries its parameters again
    with caplog.at_level(logging.INFO, logger="hf_rnn"):
        assert main(command[3:]) == 0
    after = trials_by_state(out)
    assert set(before["COMPLETE"]) <= set(after["COMPLETE"]) and len(after["COMPLETE"]) == 3
    assert after["FAIL"] == [killed]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    retry = [trial for trial in study.trials if trial.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].params == study.trials[killed].params
    assert f"Trial {killed} was interrupted" in caplog.text
    assert not (out / "search.lock").exists()


def test_changed_recipe_does_not_resume_an_old_study(tmp_path, capsys):
    recipe = write(tmp_path, steps=2)
    out = tmp_path / "search"
    assert main(["search", str(recipe), "--trials", "1", "--output-dir", str(out)]) == 0
    capsys.readouterr()
    code = main(["search", str(recipe), "--trials", "2", "--set", "training.max_steps=4", "--output-dir", str(out)])
    assert code == 2 and "another version of this recipe" in capsys.readouterr().err


@pytest.mark.parametrize(
    "section, message",
    [
        (
            "search: {params: {training.learning_rat: {type: float, low: 0.1, high: 1}}}",
            "Did you mean 'learning_rate'?",
        ),
        ("search: {metrc: accuracy, params: {}}", "unknown key 'metrc' in search. Did you mean 'metric'?"),
        ("search: {params: {model.hidden_size: {type: int, low: 5, high: 2}}}", "low (5) must be below high (2)"),
        ("search: {params: {model.hidden_size: {type: int, low: 4, hi: 8}}}", "Did you mean 'high'?"),
        ("search: {params: {training.learning_rate: {type: float, low: 0, high: 1, log: true}}}", "needs low > 0"),
        ("search: {params: {model.hidden_size: {type: categorical, choices: []}}}", "non-empty list of choices"),
        ("search: {params: {model.hidden_size: {type: categorical, choices: [8, 'x']}}}", "refuses 'x'"),
        ("search: {params: {model.dropout: {type: float, low: 0.5, high: 1.5}}}", "refuses 1.5"),
        ("search: {params: {tokenizer.max_length: {type: int, low: 8, high: 64}}}", "only model.KEY and training.KEY"),
        ("search: {params: {model.frontend: {type: categorical, choices: [none]}}}", "searchable keys of model"),
        ("search: {metric: roc, params: {model.hidden_size: {type: int, low: 4, high: 8}}}", "search.metric 'roc'"),
        (
            "search: {direction: up, params: {model.hidden_size: {type: int, low: 4, high: 8}}}",
            "search.direction must",
        ),
        ("search: {metric: accuracy}", "search.params is missing"),
    ],
)
def test_search_section_errors_name_the_line(tmp_path, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: imdb_bilstm_100\n\n{section}\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(str(path))
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)


def test_a_recipe_without_search_section_is_a_user_error(tmp_path, capsys):
    assert main(["search", "imdb_bilstm_100", "--trials", "2", "--output-dir", str(tmp_path)]) == 2
    assert "has no search: section" in capsys.readouterr().err


def test_early_stopping_counts_afresh_in_every_trial(tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from hf_rnn.search import TrialEarlyStopping

    args = TrainingArguments(
        output_dir=str(tmp_path),
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        report_to="none",
        use_cpu=True,
    )
    callback = TrialEarlyStopping(early_stopping_patience=2)
    callback.early_stopping_patience_counter = 1  # what the previous trial left
    callback.on_train_begin(args, TrainerState(), TrainerControl())
    assert callback.early_stopping_patience_counter == 0
