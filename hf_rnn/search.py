"""`hf-rnn search`: hyperparameter search over a recipe's `search:` section (hf_rnn/search_space.py), through
`Trainer.hyperparameter_search` with the optuna backend.

    hf-rnn search imdb_bilstm_100 --trials 20 [--output-dir DIR] [--set KEY=VALUE ...]

The tokenizer and the data are prepared once; each trial builds its model from its own recipe (`model_init`) and its
`TrainingArguments` from the same recipe. The output folder (default `hf_rnn_outputs/<recipe>_search`) holds:

    study.db            the optuna study (SQLite): a killed search resumes from it, keeping its finished trials
    trials/             the Trainer's checkpoints of the running trial (removed when a trial ends)
    tokenizer.json      the search's tokenizer, reused when it resumes
    best_recipe.yaml    the best trial as a complete recipe: `hf-rnn train best_recipe.yaml`
    search_results.json every trial: number, state, objective, parameters, duration
    search_plot.png     the objective per trial, with the best so far

`--trials N` is the size of the whole study: a resumed search runs the trials still missing. A trial that was running
when the search was killed is marked failed and its parameters are tried again first.
"""

import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import psutil
import transformers
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments

from .data import PaddingCollator
from .recipes import Recipe, RecipeError, recipe_from_dict
from .reproduce import recipe_hash
from .search_space import ParamSpec, SearchSpec, set_key
from .training import (
    EpochEndLogging,
    MetricsComputer,
    NonFiniteLossError,
    RecurrentTrainer,
    StopOnNonFiniteLoss,
    build_model,
    prepare_datasets,
    training_arguments,
    with_frontend_features,
)

logger = logging.getLogger(__name__)

STUDY_FILE = "study.db"


@dataclass
class SearchResult:
    """The outcome of [`search`]: the best trial, its recipe file and the whole study."""

    output_dir: Path
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_recipe: Path
    trials: list[dict]


def search(recipe: Recipe, n_trials: int, output_dir: str | Path | None = None) -> SearchResult:
    """Runs (or resumes) a hyperparameter search over the recipe's `search` section.

    Args:
        recipe ([`Recipe`]): a validated recipe with a `search` section.
        n_trials (`int`): the number of trials the study should hold once done (finished and pruned trials count;
            failed ones do not).
        output_dir (`str` or `Path`, *optional*): defaults to `hf_rnn_outputs/<recipe name>_search`.

    Returns:
        [`SearchResult`].
    """
    try:
        import optuna
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "hf-rnn search needs optuna; install it with `pip install 'hf-rnn[search]'`."
        ) from None
    if recipe.search is None:
        raise RecipeError(
            f"{recipe.source or recipe.name}: the recipe has no search: section; add one naming the keys to vary "
            "(see the README, 'Hyperparameter search')."
        )
    if n_trials < 1:
        raise ValueError(f"--trials must be at least 1, got {n_trials}.")
    space: SearchSpec = recipe.search
    output_dir = Path(output_dir or Path("hf_rnn_outputs") / f"{recipe.name}_search")
    output_dir.mkdir(parents=True, exist_ok=True)
    # every trial selects its best checkpoint and stops early on the metric the search optimizes
    base = recipe_from_dict(
        set_key(
            {k: v for k, v in recipe.to_dict().items() if k != "search"},
            "training.metric_for_best_model",
            space.metric.removeprefix("eval_"),
        ),
        name=recipe.name,
    )
    storage_url = f"sqlite:///{(output_dir / STUDY_FILE).resolve()}"
    with _single_search(output_dir):
        storage = optuna.storages.RDBStorage(storage_url)
        study = optuna.create_study(
            study_name=recipe.name, storage=storage, direction=space.direction, load_if_exists=True
        )
        _check_same_recipe(study, base, output_dir)
        _retry_interrupted_trials(study, storage, output_dir)
        counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        done = len(study.get_trials(deepcopy=False, states=counted))
        if done:
            logger.info("Resuming the search in %s: %d of %d trials done", output_dir, done, n_trials)
        if done < n_trials:
            trainer, hp_space = _build_trainer(base, space, output_dir, start=done, total=n_trials)
            pruner = optuna.pruners.MedianPruner() if space.pruner == "median" else optuna.pruners.NopPruner()
            trainer.hyperparameter_search(
                hp_space=hp_space,
                compute_objective=_objective(trainer, space),
                n_trials=n_trials - done,
                direction=space.direction,
                backend="optuna",
                study_name=recipe.name,
                storage=storage,
                load_if_exists=True,
                # seeded by the recipe, shifted by the trials already run so a resumed search does not repeat them
                sampler=optuna.samplers.TPESampler(seed=base.training.seed + len(study.trials)),
                pruner=pruner,
                # a diverging trial (NaN loss) is recorded as failed; the search goes on
                catch=(NonFiniteLossError,),
            )
            # checkpoints of pruned or failed trials (finished trials remove their own)
            shutil.rmtree(output_dir / "trials", ignore_errors=True)
        study = optuna.load_study(study_name=recipe.name, storage=storage)
    return _write_outcome(study, base, space, output_dir, n_trials)


@contextmanager
def _single_search(output_dir: Path):
    """One search per folder: a second one would take the first one's running trials for interrupted ones."""
    lock = output_dir / "search.lock"
    try:
        holder = int(lock.read_text().strip())
    except (OSError, ValueError):
        holder = None
    if holder is not None and holder != os.getpid() and psutil.pid_exists(holder):
        raise FileExistsError(
            f"{output_dir} is in use by a running search (process {holder}); wait for it to end, or delete "
            f"{lock} if no search runs there."
        )
    lock.write_text(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _check_same_recipe(study, base: Recipe, output_dir: Path) -> None:
    """A study holds trials of one recipe: resuming it with another would compare trials of different experiments."""
    stamp = recipe_hash(base.to_dict())
    recorded = study.user_attrs.get("recipe_hash")
    if recorded is None:
        study.set_user_attr("recipe_hash", stamp)
        study.set_user_attr("recipe", base.to_yaml())
    elif recorded != stamp:
        raise FileExistsError(
            f"{output_dir} holds a search over another version of this recipe (its training settings changed); "
            "use another --output-dir, or delete that folder to start over."
        )


def _retry_interrupted_trials(study, storage, output_dir: Path) -> None:
    """Trials left RUNNING belong to a killed search (only one search runs per folder): mark them failed and queue
    their parameters again, so the interrupted configuration is still tried."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        shutil.rmtree(output_dir / "trials" / f"run-{trial.number}", ignore_errors=True)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        logger.info("Trial %d was interrupted; it is marked failed and its parameters are queued again", trial.number)


def trial_recipe(base: Recipe, space: SearchSpec, trial) -> Recipe:
    """The recipe of one trial: the base recipe with the trial's suggested values (a validated [`Recipe`])."""
    resolved = base.to_dict()
    for target, spec in space.params.items():
        resolved = set_key(resolved, target, _suggest(trial, target, spec))
    return recipe_from_dict(resolved, name=base.name)


def _suggest(trial, name: str, spec: ParamSpec):
    if spec.type == "float":
        return trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
    if spec.type == "int":
        return trial.suggest_int(name, spec.low, spec.high, log=spec.log, step=spec.step or 1)
    # optuna stores plain scalars; a list choice ([64] hidden sizes) is stored as its JSON text
    encoded = [json.dumps(choice) if isinstance(choice, (list, dict)) else choice for choice in spec.choices]
    value = trial.suggest_categorical(name, encoded)
    return spec.choices[encoded.index(value)]


def _build_trainer(base: Recipe, space: SearchSpec, output_dir: Path, start: int, total: int):
    """A Trainer whose `model_init` builds each trial's model from the trial's recipe, and the `hp_space` that
    turns a trial's recipe into the `TrainingArguments` values the Trainer sets before the trial."""
    base_args = training_arguments(base, output_dir / "trials")
    datasets, label_names, tokenizer = prepare_datasets(base, output_dir, base_args)
    # the frontend is fixed within a search (see search_space), so its cached outputs serve every trial
    datasets = with_frontend_features(base, build_model(base, tokenizer, label_names), datasets, base_args)
    recipes: dict[int, Recipe] = {}

    def recipe_of(trial) -> Recipe:
        if trial.number not in recipes:
            recipes[trial.number] = trial_recipe(base, space, trial)
        return recipes[trial.number]

    def model_init(trial=None):
        recipe = base if trial is None else recipe_of(trial)
        if trial is not None:
            done = start + len(recipes)
            logger.info("Trial %d (%d of %d): %s", trial.number, min(done, total), total, _format(trial.params))
        # the Trainer seeds with the previous trial's arguments before model_init: seed with this trial's
        transformers.set_seed(recipe.training.seed)
        return build_model(recipe, tokenizer, label_names)

    callbacks = [EpochEndLogging(), StopOnNonFiniteLoss(), RemoveTrialCheckpoints()]
    if base.training.early_stopping_patience is not None:
        callbacks.append(TrialEarlyStopping(base.training.early_stopping_patience))
    trainer = RecurrentTrainer(
        model_init=model_init,
        args=base_args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"],
        processing_class=tokenizer,
        data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id),
        compute_metrics=MetricsComputer(base.training.metrics, len(label_names)),
        callbacks=callbacks,
        flush_denormal=base.training.flush_denormal,
        adaptive_threads=base.training.adaptive_threads,
    )
    names = [f.name for f in fields(TrainingArguments) if f.init]

    def hp_space(trial) -> dict[str, Any]:
        trial_args = training_arguments(recipe_of(trial), output_dir / "trials")
        # every value that differs from the current arguments: this trial's, and those a previous trial changed
        return {
            name: getattr(trial_args, name)
            for name in names
            if getattr(trial_args, name) != getattr(trainer.args, name)
        }

    return trainer, hp_space


def _objective(trainer, space: SearchSpec):
    """The best value of the search metric in the trial so far: the trial keeps its best checkpoint, not its last."""
    better = max if space.direction == "maximize" else min

    def compute_objective(metrics: dict[str, float]) -> float:
        value = metrics[space.metric]
        best = trainer.state.best_metric
        return value if best is None else better(value, best)

    return compute_objective


class TrialEarlyStopping(EarlyStoppingCallback):
    """Early stopping that starts counting afresh in every trial (transformers' callback keeps its count from one
    `train()` call to the next, so a trial would inherit the patience the previous one used up)."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.early_stopping_patience_counter = 0
        return super().on_train_begin(args, state, control, **kwargs)


class RemoveTrialCheckpoints(TrainerCallback):
    """A finished trial's checkpoints are of no further use (its best model is loaded, its score recorded)."""

    def on_train_end(self, args, state, control, **kwargs):
        for checkpoint in Path(args.output_dir).glob("run-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)


def _format(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}" for name, value in params.items()
    )


def _write_outcome(study, base: Recipe, space: SearchSpec, output_dir: Path, n_trials: int) -> SearchResult:
    import optuna

    trials = [
        {
            "number": trial.number,
            "state": trial.state.name.lower(),
            "value": trial.value,
            "params": trial.params,
            "duration_s": round(trial.duration.total_seconds(), 1) if trial.duration else None,
        }
        for trial in study.trials
    ]
    (output_dir / "search_results.json").write_text(
        json.dumps({"metric": space.metric, "direction": space.direction, "trials": trials}, indent=2) + "\n",
        encoding="utf-8",
    )
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"no trial of the search in {output_dir} completed; see the errors above.")
    best = study.best_trial
    best_recipe = trial_recipe(base, space, optuna.trial.FixedTrial(best.params, best.number))
    best_recipe.name = f"{base.name}_best"
    best_recipe.description = f"{base.description or base.name} (best of a {len(study.trials)}-trial search)"
    path = output_dir / "best_recipe.yaml"
    header = (
        f"# The best trial ({best.number}, {space.metric} {best.value:.4f}) of `hf-rnn search {base.name}`.\n"
        "# A complete recipe: train it with `hf-rnn train best_recipe.yaml`.\n"
    )
    path.write_text(header + best_recipe.to_yaml(), encoding="utf-8")
    save_search_plot(trials, space, output_dir / "search_plot.png")
    return SearchResult(
        output_dir=output_dir,
        best_trial=best.number,
        best_value=best.value,
        best_params=best.params,
        best_recipe=path,
        trials=trials,
    )


def format_trials(result: SearchResult, metric: str) -> str:
    """The summary table printed at the end of a search: one row per trial, the best marked."""
    names = sorted({name for trial in result.trials for name in trial["params"]})
    header = ["trial", "state", metric, *names, "time"]
    rows = []
    for trial in result.trials:
        value = "" if trial["value"] is None else f"{trial['value']:.4f}"
        params = [_cell(trial["params"].get(name)) for name in names]
        time = "" if trial["duration_s"] is None else f"{trial['duration_s']:.0f} s"
        marker = " *" if trial["number"] == result.best_trial else ""
        rows.append([f"{trial['number']}{marker}", trial["state"], value, *params, time])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def save_search_plot(trials: list[dict], space: SearchSpec, path: Path) -> None:
    """The objective of every finished trial, and the best so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [(trial["number"], trial["value"]) for trial in trials if trial["value"] is not None]
    figure, axis = plt.subplots(figsize=(7, 4))
    if scored:
        numbers, values = zip(*scored)
        pick = max if space.direction == "maximize" else min
        running = [pick(values[: i + 1]) for i in range(len(values))]
        axis.plot(numbers, values, "o", label="trial")
        axis.step(numbers, running, where="post", label="best so far")
        axis.legend()
    axis.set_xlabel("trial")
    axis.set_ylabel(space.metric)
    axis.set_title(f"Search: {space.metric} per trial ({space.direction})")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
