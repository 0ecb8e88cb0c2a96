"""Reliability II: what a hostile but ordinary user gives gets a clear one-line message naming what to fix, a valid
result, or a refusal before anything is lost; never a traceback, a silently wrong model or a truncated file.

Each test is one class of input (see README, Reliability); the model-directory classes are in test_reliability.py.
"""

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_rnn.recipes import Recipe, RecipeError, load_recipe, recipe_from_dict


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


# --- random recipes -------------------------------------------------------------------------------------------------

KEYS = ["model", "data", "training", "tokenizer", "hub", "name", "extends", "type", "hidden_size", "seed", "metrics"]
KEYS += ["dataset", "eval_strategy", "language", "bidirectional", "num_layers", "max_tokens", "base", "bf16", "x"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["no", "yes", "on", "off", "gru", "lstm", "epoch", "imdb", "quickstart", "accuracy", "1e-3"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
recipes = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(recipe=recipes, style=st.sampled_from([None, True, False]))
def test_random_recipes_give_a_valid_recipe_or_one_clear_line(tmp_path_factory, monkeypatch, recipe, style):
    """Random keys, values and YAML shapes (block, flow, nesting) through the file loader: a valid recipe or a
    one-line RecipeError, never another exception."""
    import yaml

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path_factory.mktemp("random")
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, default_flow_style=style, allow_unicode=True))
    try:
        loaded = load_recipe(str(path))
    except RecipeError as error:
        assert "\n" not in str(error) and str(error).strip()
    else:
        assert isinstance(loaded, Recipe)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#, \n\t0yesno")), max_size=60))
def test_random_yaml_text_gives_a_valid_recipe_or_one_clear_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("text") / "recipe.yaml"
    path.write_text(text)
    try:
        load_recipe(str(path))
    except RecipeError as error:
        assert "\n" not in str(error) and str(error).strip()


@settings(max_examples=60, deadline=None)
@given(data=recipes)
def test_random_dict_recipes_give_a_valid_recipe_or_one_clear_line(data):
    try:
        recipe_from_dict(data)
    except RecipeError as error:
        assert "\n" not in str(error)
