"""`hf-rnn reproduce`: trains the zoo's recipes with their fixed seeds and publishes the numbers.

    hf-rnn reproduce imdb_simple_rnn_100 'imdb_*_100'   # recipe names, YAML files or patterns over shipped names
    hf-rnn reproduce --all [--offline]                   # every shipped recipe (--offline: skip those using the Hub)

The output folder (default `hf_rnn_outputs/reproduce`) holds:

    models/<recipe>/   each trained model directory (see hf_rnn/training.py)
    results.json       per recipe: test metrics, parameters, training time, CPU, versions, the recipe's hash
    RESULTS.md         generated from results.json: the table and a "which model should I pick" guide

A run resumes where the last one stopped: a recipe whose resolved recipe (and hf_rnn version) has not changed since
its model was trained is not retrained, a changed one is, and one cut short continues from its last checkpoint
(`train()` does that). Results of recipes not named in a run are kept, so RESULTS.md grows run by run.
"""

import datetime
import fnmatch
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import __version__
from .cpu import cpu_name
from .recipes import Recipe, RecipeError, list_recipes, load_recipe, network_sources
from .utils import one_line

logger = logging.getLogger(__name__)

# sections that describe a recipe without changing what it trains: editing them does not call for a new run
_DESCRIPTIVE_KEYS = ("description", "reference", "search")


def select_recipes(names: list[str], everything: bool = False, overrides: list[str] | None = None) -> list[Recipe]:
    """Loads and validates the recipes to reproduce, before anything is trained.

    Args:
        names (`list[str]`): recipe names, YAML files, or fnmatch patterns over the shipped names (`imdb_*`).
        everything (`bool`, *optional*, defaults to `False`): every shipped recipe (`--all`) but the `*_base` ones,
            which hold shared settings for other recipes to extend.
        overrides (`list[str]`, *optional*): `section.key=value` applied to every recipe.
    """
    if everything == bool(names):
        raise ValueError("name the recipes to reproduce (names, YAML files or patterns such as 'imdb_*'), or --all.")
    shipped = list_recipes()
    chosen: list[str] = []
    for name in [n for n in shipped if not n.endswith("_base")] if everything else names:
        if any(char in name for char in "*?["):
            matches = fnmatch.filter(shipped, name)
            if not matches:
                raise RecipeError(f"pattern {name!r} matches no recipe; `hf-rnn list` shows them.")
            chosen += matches
        else:
            chosen.append(name)
    recipes: dict[str, Recipe] = {}
    for name in dict.fromkeys(chosen):
        recipe = load_recipe(name, overrides=overrides)
        if recipe.name in recipes and recipes[recipe.name].source != recipe.source:
            raise RecipeError(
                f"two recipes are named {recipe.name!r} ({recipes[recipe.name].source}, {recipe.source}); their "
                "results would share one row, so rename one."
            )
        recipes[recipe.name] = recipe
    return list(recipes.values())


def recipe_hash(resolved: dict, version: str = __version__) -> str:
    """What decides whether a finished run still stands: the resolved recipe (without its descriptive sections) and
    the hf_rnn version that trained it."""
    trained = {key: value for key, value in resolved.items() if key not in _DESCRIPTIVE_KEYS}
    text = yaml.safe_dump(trained, sort_keys=True) + f"hf_rnn {version}\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _model_dir_hash(model_dir: Path) -> str | None:
    """The hash of the recipe a finished model directory was trained from, or None when there is no finished model."""
    try:
        resolved = yaml.safe_load((model_dir / "recipe.yaml").read_text(encoding="utf-8"))
        summary = json.loads((model_dir / "training_summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not (model_dir / "config.json").is_file() or not isinstance(resolved, dict):
        return None
    return recipe_hash(resolved, summary.get("versions", {}).get("hf_rnn", "unknown"))


@dataclass
class ReproduceReport:
    """What a `reproduce` run did: recipe names per outcome, and every result (this run's and earlier ones')."""

    output_dir: Path
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)


def reproduce(recipes: list[Recipe], output_dir: str | Path, offline: bool = False) -> ReproduceReport:
    """Trains each recipe unless its finished model still stands, and rewrites results.json and RESULTS.md after each.

    Args:
        recipes (`list[Recipe]`): validated recipes (see [`select_recipes`]); seeds come from the recipes.
        output_dir (`str` or `Path`): the folder for models/, results.json and RESULTS.md.
        offline (`bool`, *optional*, defaults to `False`): skip recipes that read from the Hub (see
            [`network_sources`]) instead of failing on them.

    Returns:
        [`ReproduceReport`]. A recipe that fails is recorded with its error and the others still run.
    """
    from .training import train

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = ReproduceReport(output_dir=output_dir, results=load_results(output_dir))
    for position, recipe in enumerate(recipes, start=1):
        name = recipe.name
        model_dir = output_dir / "models" / name
        current = recipe_hash(recipe.to_dict())
        needs = network_sources(recipe)
        previous = report.results.get(name, {})
        if _model_dir_hash(model_dir) == current:
            logger.info("[%d/%d] %s: unchanged since its last run, not retrained", position, len(recipes), name)
            # the machine that trained it stays on record; descriptive keys follow the recipe as it is now
            keep = previous if previous.get("recipe_hash") == current and previous.get("status") == "done" else {}
            report.results[name] = _entry(recipe, model_dir, output_dir, current, keep)
            report.reused.append(name)
        elif offline and needs:
            logger.info("[%d/%d] %s: skipped, needs the network (%s)", position, len(recipes), name, "; ".join(needs))
            if previous.get("status") != "done":
                report.results[name] = _base_entry(recipe, current) | {
                    "status": "skipped",
                    "error": "needs the network: " + "; ".join(needs),
                }
            report.skipped.append(name)
        else:
            logger.info("[%d/%d] %s: training (seed %d)", position, len(recipes), name, recipe.training.seed)
            started = time.perf_counter()
            try:
                _train_in_place(train, recipe, model_dir)
            except Exception as error:  # one failing recipe must not cost the others their run
                logger.error("%s failed: %s: %s", name, type(error).__name__, one_line(error))
                report.results[name] = _base_entry(recipe, current) | {
                    "status": "failed",
                    "error": f"{type(error).__name__}: {one_line(error)}",
                }
                report.failed.append(name)
            else:
                # the whole call: data, tokenizer, frontend features, training, test evaluation, saving
                wall = {"wall_time_s": round(time.perf_counter() - started, 1)}
                report.results[name] = _entry(recipe, model_dir, output_dir, current, wall)
                report.trained.append(name)
        write_results(report.results, output_dir)
    return report


def _train_in_place(train, recipe: Recipe, model_dir: Path) -> None:
    """Trains into `model_dir`, replacing a model of an older recipe only once the new one is complete, and
    resuming an interrupted run of this recipe."""
    stale = model_dir.with_name(model_dir.name + ".stale")
    if model_dir.exists():
        # set aside, not deleted: if this run is interrupted, the next one resumes from the partial run
        shutil.rmtree(stale, ignore_errors=True)
        model_dir.rename(stale)
    stamp = model_dir.with_name(model_dir.name + ".partial") / "recipe.yaml"
    # an interrupted run of another version of the recipe cannot be resumed: start over
    restart = stamp.is_file() and stamp.read_text(encoding="utf-8") != recipe.to_yaml()
    train(recipe, output_dir=model_dir, overwrite=restart)
    shutil.rmtree(stale, ignore_errors=True)


def _base_entry(recipe: Recipe, current_hash: str) -> dict:
    reference = recipe.reference
    return {
        "recipe": recipe.name,
        "description": recipe.description,
        "dataset": recipe.data.dataset,
        "recipe_hash": current_hash,
        "reference": None
        if reference is None
        else {"metric": reference.key, "value": reference.value, "source": reference.source},
    }


def _entry(recipe: Recipe, model_dir: Path, output_dir: Path, current_hash: str, keep: dict) -> dict:
    """A finished recipe's row, read from its model directory."""
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    summary = json.loads((model_dir / "training_summary.json").read_text(encoding="utf-8"))
    machine = {
        "cpu": keep.get("cpu", cpu_name()),
        "logical_cpus": keep.get("logical_cpus", os.cpu_count()),
        "wall_time_s": keep.get("wall_time_s"),
        "finished_at": keep.get(
            "finished_at", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        ),
    }
    return _base_entry(recipe, current_hash) | {
        "status": "done",
        "model_dir": model_dir.relative_to(output_dir).as_posix(),
        "metrics": metrics,
        "parameters": summary["total_params"],
        "trainable_parameters": summary["trainable_params"],
        "train_runtime_s": summary["train_runtime_s"],
        "resumed": summary.get("resumed_from_checkpoint") is not None,
        "epochs": summary["epochs_completed"],
        "train_samples": summary["train_samples"],
        "test_samples": summary["test_samples"],
        **machine,
        "versions": {
            **summary["versions"],
            "python": keep.get("versions", {}).get("python", platform.python_version()),
        },
    }


def load_results(output_dir: str | Path) -> dict[str, dict]:
    """The results recorded in `output_dir/results.json` (empty when there are none)."""
    path = Path(output_dir) / "results.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))["recipes"]
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"{path} is not a results file written by hf-rnn reproduce ({error}); move it away to start afresh."
        ) from None


def write_results(results: dict[str, dict], output_dir: str | Path) -> None:
    """Writes results.json and the RESULTS.md generated from it (each replaced atomically)."""
    output_dir = Path(output_dir)
    ordered = dict(sorted(results.items()))
    document = {"generated_by": f"hf-rnn reproduce (hf_rnn {__version__})", "recipes": ordered}
    _replace(output_dir / "results.json", json.dumps(document, indent=2) + "\n")
    _replace(output_dir / "RESULTS.md", render_results(ordered, _defaults_study(output_dir)))


def _defaults_study(output_dir: Path) -> str | None:
    """The table `scripts/defaults_study.py` wrote into the same folder, if it ran there."""
    path = output_dir / "defaults_study.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def render_results(results: dict[str, dict], defaults_study: str | None = None) -> str:
    """RESULTS.md: a table of every finished recipe, a "which model should I pick" guide computed from it, the
    recipes that failed or were skipped, and the study behind hf_rnn's defaults when `scripts/defaults_study.py` ran
    in the same folder."""
    done = sorted(
        (entry for entry in results.values() if entry.get("status") == "done"),
        key=lambda entry: (entry["dataset"], entry["recipe"]),
    )
    lines = [
        "# hf-rnn results",
        "",
        "<!-- Generated by `hf-rnn reproduce` from results.json: do not edit by hand; rerun it to update. -->",
        "",
        "Test-set scores of the zoo's recipes, each trained once with the seeds in its recipe (`hf-rnn reproduce`). "
        "Where a dataset has no test split (the embedded IMDB, Rotten Tomatoes, SMS spam), the test split is carved "
        "out of its training data, so those scores are not comparable with official test sets. Accuracy and macro-F1 "
        "in percent; the reference is the published figure the recipe reproduces, or the zoo's target for its "
        "dataset, and the difference is in points: a negative one is a figure or target not reached, and the other "
        "recipes of the same dataset are what was tried.",
        "",
    ]
    cpus = sorted({(entry["cpu"], entry["logical_cpus"]) for entry in done})
    versions = sorted({_versions(entry) for entry in done})
    if len(cpus) == 1:
        lines += [f"Machine: {cpus[0][0]} ({cpus[0][1]} logical CPUs).", ""]
    if len(versions) == 1:
        lines += [f"Versions: {versions[0]}.", ""]
    header = ["recipe", "dataset", "accuracy", "macro-F1", "reference", "difference", "parameters", "training time"]
    if len(cpus) > 1:
        header.append("CPU")
    if len(versions) > 1:
        header.append("versions")
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|",
    ]
    resumed = False
    for entry in done:
        metrics, reference = entry["metrics"], entry.get("reference")
        compared = reference is not None and reference["metric"] in metrics
        time = _duration(entry["train_runtime_s"]) + (" *" if entry.get("resumed") else "")
        resumed |= bool(entry.get("resumed"))
        row = [
            f"`{entry['recipe']}`",
            entry["dataset"],
            _percent(metrics.get("accuracy")),
            _percent(metrics.get("f1_macro")),
            f"{_percent(reference['value'])} ({reference['source']})" if reference else "",
            f"{100 * (metrics[reference['metric']] - reference['value']):+.2f}" if compared else "",
            _parameters(entry["parameters"], entry["trainable_parameters"]),
            time,
        ]
        if len(cpus) > 1:
            row.append(f"{entry['cpu']} ({entry['logical_cpus']})")
        if len(versions) > 1:
            row.append(_versions(entry))
        lines.append("| " + " | ".join(row) + " |")
    if resumed:
        lines += ["", "\\* resumed from a checkpoint: the time of the last part of the run only."]
    lines += ["", "## Which model should I pick?", ""] + _guide(done)
    missing = [entry for entry in results.values() if entry.get("status") != "done"]
    if missing:
        lines += ["", "## Not reproduced", ""]
        lines += [f"- `{entry['recipe']}`: {entry['status']}: {entry['error']}" for entry in missing]
    if defaults_study:
        lines += [
            "",
            "## How the defaults were chosen",
            "",
            "The same models trained with each candidate default on every embedded dataset "
            "(`python scripts/defaults_study.py`):",
            "",
            defaults_study.strip(),
        ]
    return "\n".join(lines) + "\n"


def _guide(done: list[dict]) -> list[str]:
    """Per dataset: the most accurate recipe, and the fastest and the smallest within one point of it."""
    if not done:
        return ["No recipe has finished yet."]
    lines = []
    for dataset in sorted({entry["dataset"] for entry in done}):
        entries = [entry for entry in done if entry["dataset"] == dataset and "accuracy" in entry["metrics"]]
        if not entries:
            continue
        best = max(entries, key=lambda entry: entry["metrics"]["accuracy"])
        close = [e for e in entries if e["metrics"]["accuracy"] >= best["metrics"]["accuracy"] - 0.01]
        fastest = min(close, key=lambda entry: entry["train_runtime_s"])
        smallest = min(close, key=lambda entry: entry["trainable_parameters"])
        advice = [f"most accurate: `{best['recipe']}` ({_percent(best['metrics']['accuracy'])})"]
        if fastest is not best:
            advice.append(
                f"fastest to train within 1 point of it: `{fastest['recipe']}` "
                f"({_percent(fastest['metrics']['accuracy'])}, {_duration(fastest['train_runtime_s'])} against "
                f"{_duration(best['train_runtime_s'])})"
            )
        if smallest is not best and smallest is not fastest:
            advice.append(
                f"fewest trained parameters within 1 point: `{smallest['recipe']}` "
                f"({_percent(smallest['metrics']['accuracy'])}, {_parameters(smallest['trainable_parameters'])})"
            )
        lines.append(f"- **{dataset}**: " + "; ".join(advice) + ".")
    return lines


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _parameters(total: int, trainable: int | None = None) -> str:
    def short(count: int) -> str:
        return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k"

    if trainable is None or trainable == total:
        return short(total)
    return f"{short(total)} ({short(trainable)} trained)"


def _duration(seconds: float) -> str:
    if seconds < 10:  # short runs keep a decimal: "6.6 s against 7.1 s", not "7 s against 7 s"
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _versions(entry: dict) -> str:
    return ", ".join(f"{name} {version}" for name, version in entry["versions"].items())


def _replace(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)
