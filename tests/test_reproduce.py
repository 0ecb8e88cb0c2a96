"""`hf-rnn reproduce`: two tiny recipes trained through the real Trainer on slices of the embedded data; a second run
retrains nothing, a changed recipe is retrained alone, an interrupted one resumes, failures are recorded."""

import json
import textwrap
from pathlib import Path

import pytest
from transformers import TrainerCallback

from hf_rnn.cli import main
from hf_rnn.cpu import cpu_name
from hf_rnn.recipes import RecipeError, load_recipe
from hf_rnn.reproduce import recipe_hash, render_results, reproduce, select_recipes
from hf_rnn.training import train

TINY = """
model:
  type: {cell}
  embedding_dim: 8
  hidden_size: 8
tokenizer:
  max_tokens: 500
  max_length: 32
data:
  dataset: {dataset}
  max_train_samples: 64
  max_eval_samples: 32
training:
  max_steps: {steps}
  per_device_train_batch_size: 16
  learning_rate: 0.01
  logging_steps: 2
  eval_strategy: steps
  eval_steps: 2
  save_strategy: steps
  early_stopping_patience: null
"""


def write(folder: Path, name: str, cell: str = "gru", dataset: str = "imdb", steps: int = 4, extra: str = "") -> str:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(TINY).format(cell=cell, dataset=dataset, steps=steps) + textwrap.dedent(extra))
    return str(path)


REFERENCE = """
description: a tiny LSTM
reference: {metric: accuracy, value: 0.5, source: "a coin flip"}
"""


def run(*args: str) -> tuple[int, dict]:
    code = main(["reproduce", *args])
    output_dir = Path(args[args.index("--output-dir") + 1])
    return code, json.loads((output_dir / "results.json").read_text())["recipes"]


def test_reproduce_resumes_and_retrains_only_what_changed(tmp_path, capsys):
    first = write(tmp_path, "first", cell="lstm", extra=REFERENCE)
    second = write(tmp_path, "second", cell="gru", dataset="rotten_tomatoes")
    out = tmp_path / "zoo"
    code, results = run(first, second, "--output-dir", str(out))
    assert code == 0
    assert [results[name]["status"] for name in ("first", "second")] == ["done", "done"]
    row = results["first"]
    assert 0 <= row["metrics"]["accuracy"] <= 1 and "f1_macro" in row["metrics"]
    assert row["parameters"] > 0 and 0 < row["train_runtime_s"] <= row["wall_time_s"] and row["cpu"] == cpu_name()
    assert row["versions"]["hf_rnn"] and row["reference"] == {
        "metric": "accuracy",
        "value": 0.5,
        "source": "a coin flip",
    }
    table = (out / "RESULTS.md").read_text()
    difference = f"{100 * (row['metrics']['accuracy'] - 0.5):+.2f}"
    assert "| `first` | imdb |" in table and f"50.00% (a coin flip) | {difference} |" in table
    assert "**imdb**: most accurate: `first`" in table and "**rotten_tomatoes**" in table
    weights = {name: (out / "models" / name / "model.safetensors").stat().st_mtime_ns for name in results}

    # unchanged: nothing is retrained, the results stay
    capsys.readouterr()
    code, again = run(first, second, "--output-dir", str(out))
    assert code == 0 and "0 trained, 2 unchanged" in capsys.readouterr().out
    assert again == results
    assert {name: (out / "models" / name / "model.safetensors").stat().st_mtime_ns for name in again} == weights

    # a descriptive change (the reference) updates the table without training; a training change retrains that one
    write(tmp_path, "first", cell="lstm", extra=REFERENCE.replace("0.5", "0.25"))
    write(tmp_path, "second", cell="gru", dataset="rotten_tomatoes", steps=6)
    code, changed = run(first, second, "--output-dir", str(out))
    assert "1 trained, 1 unchanged" in capsys.readouterr().out
    assert (out / "models" / "first" / "model.safetensors").stat().st_mtime_ns == weights["first"]
    assert (out / "models" / "second" / "model.safetensors").stat().st_mtime_ns != weights["second"]
    assert (
        changed["first"]["reference"]["value"] == 0.25 and "25.00% (a coin flip)" in (out / "RESULTS.md").read_text()
    )
    assert changed["second"]["recipe_hash"] != results["second"]["recipe_hash"]
    assert json.loads((out / "models" / "second" / "training_summary.json").read_text())["global_steps"] == 6
    assert not (out / "models" / "second.stale").exists()


class InterruptAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt


def test_an_interrupted_recipe_resumes_from_its_checkpoint(tmp_path):
    recipe = load_recipe(write(tmp_path, "cut"))
    out = tmp_path / "zoo"
    with pytest.raises(KeyboardInterrupt):
        train(recipe, output_dir=out / "models" / "cut", callbacks=[InterruptAt()])
    report = reproduce([recipe], out)
    assert report.trained == ["cut"]
    assert report.results["cut"]["resumed"] is True
    assert "\\* resumed from a checkpoint" in (out / "RESULTS.md").read_text()


def test_failures_and_network_recipes_are_recorded_and_the_rest_runs(tmp_path, capsys):
    good = write(tmp_path, "good")
    broken = write(tmp_path, "broken", dataset=str(tmp_path / "missing.csv"))
    hub = write(tmp_path, "hub", dataset="someone/a-hub-dataset")
    out = tmp_path / "zoo"
    code, results = run(broken, good, hub, "--offline", "--output-dir", str(out))
    assert code == 1
    assert "failed: broken" in capsys.readouterr().err
    assert results["good"]["status"] == "done"
    assert results["broken"]["status"] == "failed" and "missing.csv" in results["broken"]["error"]
    assert results["hub"] == results["hub"] | {
        "status": "skipped",
        "error": "needs the network: Hub dataset 'someone/a-hub-dataset'",
    }
    table = (out / "RESULTS.md").read_text()
    assert "## Not reproduced" in table and "- `hub`: skipped: needs the network" in table


def test_selection_patterns_and_errors(tmp_path):
    names = [recipe.name for recipe in select_recipes(["imdb_*_100"])]
    assert names and all(name.startswith("imdb_") and name.endswith("_100") for name in names)
    with pytest.raises(ValueError, match="or --all"):
        select_recipes([])
    with pytest.raises(ValueError, match="matches no recipe"):
        select_recipes(["nothing_*"])
    assert main(["reproduce", "imdb_bilstm_10", "--output-dir", str(tmp_path)]) == 2


def test_hash_ignores_descriptive_sections_only():
    recipe = load_recipe("imdb_bigru_100").to_dict()
    described = recipe | {"description": "another text", "reference": {"metric": "accuracy", "value": 0.7}}
    assert recipe_hash(described) == recipe_hash(recipe)
    assert recipe_hash(recipe | {"training": recipe["training"] | {"seed": 1}}) != recipe_hash(recipe)
    assert recipe_hash(recipe, "0.0.1") != recipe_hash(recipe)


def test_results_table_picks_per_dataset():
    def entry(name, accuracy, seconds, trainable):
        return {
            "recipe": name,
            "dataset": "imdb",
            "status": "done",
            "metrics": {"accuracy": accuracy, "f1_macro": accuracy},
            "reference": None,
            "parameters": 2 * trainable,
            "trainable_parameters": trainable,
            "train_runtime_s": seconds,
            "cpu": "cpu",
            "logical_cpus": 2,
            "versions": {"hf_rnn": "0.1.0"},
        }

    table = render_results(
        {
            "big": entry("big", 0.90, 600, 3_000_000),
            "quick": entry("quick", 0.895, 60, 2_000_000),
            "tiny": entry("tiny", 0.892, 120, 100_000),
            "bad": entry("bad", 0.7, 1, 10),
        }
    )
    guide = table.split("## Which model should I pick?")[1]
    assert "most accurate: `big` (90.00%)" in guide
    assert "fastest to train within 1 point of it: `quick` (89.50%, 1 min 00 s against 10 min 00 s)" in guide
    assert "fewest trained parameters within 1 point: `tiny` (89.20%, 100.0k)" in guide
    assert "`bad`" not in guide
    # runs under 10 s keep a decimal, so that two of them compare
    assert "| 1.0 s |" in table and "| 2 min 00 s |" in table
    assert "6.00M (3.00M trained)" in table and "Machine: cpu (2 logical CPUs)." in table
    assert "How the defaults were chosen" not in table


def test_results_show_the_defaults_study_written_beside_them(tmp_path):
    from hf_rnn.reproduce import write_results

    write_results({}, tmp_path)
    assert "How the defaults were chosen" not in (tmp_path / "RESULTS.md").read_text()
    (tmp_path / "defaults_study.md").write_text("| model | setting | imdb | mean |\n|---|---|---:|---:|\n")
    write_results({}, tmp_path)
    results = (tmp_path / "RESULTS.md").read_text()
    assert results.split("## How the defaults were chosen")[1].count("| model | setting | imdb | mean |") == 1


@pytest.mark.parametrize(
    "section, message",
    [
        ("reference: {value: 76.7, source: Keras}", "as a fraction in [0, 1] (76.7% is 0.767), got 76.7"),
        ("reference: {value: 0.767}", "source must say where the figure comes from"),
        ("reference: {valeu: 0.767, source: Keras}", "unknown key 'valeu' in reference. Did you mean 'value'?"),
        ("reference: {metric: precision, value: 0.7, source: Keras}", "reference.metric 'precision' is not computed"),
    ],
)
def test_reference_section_errors_name_the_line(tmp_path, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: imdb_bilstm_100\n\n{section}\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(str(path))
    assert str(error.value).startswith(f"{path}:3") and message in str(error.value)


def test_all_skips_the_shared_base_recipes():
    names = [recipe.name for recipe in select_recipes([], everything=True)]
    assert "imdb_base" not in names and "quickstart" in names and "imdb_bilstm_100" in names
