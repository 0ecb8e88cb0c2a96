"""Property-based tests with hypothesis: random valid configs work end to end, random invalid ones fail with the
promised exception types only, and random padding never changes a sequence's outputs."""

import tempfile

import pytest
import torch
import yaml
from huggingface_hub.errors import StrictDataclassError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_rnn import MODEL_FAMILIES
from hf_rnn.configuration_rnn import ACTIVATIONS, MERGE_MODES, POOLINGS
from hf_rnn.recipes import Recipe, RecipeError, load_recipe, recipe_from_dict

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

valid_configs = st.fixed_dictionaries(
    {
        "model_type": st.sampled_from(sorted(MODEL_FAMILIES)),
        "vocab_size": st.integers(3, 60),
        "embedding_dim": st.integers(1, 12),
        "hidden_size": st.integers(1, 10),
        "num_layers": st.integers(1, 3),
        "bidirectional": st.booleans(),
        "merge_mode": st.sampled_from(MERGE_MODES),
        "pooling": st.sampled_from(POOLINGS),
        "dropout": st.floats(0, 0.9),
        "classifier_hidden_sizes": st.lists(st.integers(1, 8), max_size=2),
        "classifier_activation": st.sampled_from(ACTIVATIONS),
        "initializer": st.sampled_from(["pytorch", "keras"]),
        "num_labels": st.integers(1, 5),
    }
)


def build(params: dict):
    params = dict(params)
    family = MODEL_FAMILIES[params.pop("model_type")]
    config_class, sequence_class = family.config_class, family.heads["sequence_classification"]
    num_labels = params.pop("num_labels")
    config = config_class(**params, id2label={i: f"l{i}" for i in range(num_labels)})
    return sequence_class(config).eval()


def padded_batch(lengths: list[int], vocab_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(1, vocab_size, (len(lengths), width), generator=generator)
    mask = (torch.arange(width) < torch.tensor(lengths).unsqueeze(1)).long()
    return ids * mask, mask


@SETTINGS
@given(params=valid_configs, seed=st.integers(0, 1000))
def test_random_valid_configs_build_run_and_round_trip(params, seed):
    model = build(params)
    ids, mask = padded_batch([3, 1, 5], params["vocab_size"], seed)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert logits.shape == (3, params["num_labels"]) and torch.isfinite(logits).all()
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        loaded = type(model).from_pretrained(folder).eval()
    with torch.no_grad():
        reloaded = loaded(input_ids=ids, attention_mask=mask).logits
    # oneDNN may pick another kernel for the reloaded module, so allow rounding-level differences
    torch.testing.assert_close(reloaded, logits, atol=1e-6, rtol=1e-5)


@SETTINGS
@given(params=valid_configs, lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_random_padding_gives_the_outputs_of_unpadded_sequences(params, lengths, seed):
    model = build(params)
    ids, mask = padded_batch(lengths, params["vocab_size"], seed)
    extra = torch.nn.functional.pad(ids, (0, seed % 4)), torch.nn.functional.pad(mask, (0, seed % 4))
    with torch.no_grad():
        batched = model(input_ids=extra[0], attention_mask=extra[1]).logits
        for row, length in enumerate(lengths):
            alone = model(input_ids=ids[row : row + 1, :length]).logits[0]
            torch.testing.assert_close(alone, batched[row], atol=1e-5, rtol=1e-4)


INVALID_VALUES = {
    "hidden_size": st.one_of(st.integers(max_value=0), st.text(max_size=3), st.floats(allow_nan=True), st.none()),
    "num_layers": st.one_of(st.integers(max_value=0), st.booleans().map(str)),
    "pooling": st.text(max_size=8).filter(lambda v: v not in POOLINGS),
    "merge_mode": st.one_of(st.text(max_size=6).filter(lambda v: v not in MERGE_MODES), st.integers()),
    "dropout": st.one_of(st.floats(min_value=1.0, allow_nan=False), st.floats(max_value=-1e-6), st.text(max_size=3)),
    "classifier_hidden_sizes": st.lists(st.integers(max_value=0), min_size=1, max_size=2),
    "initializer": st.text(max_size=6).filter(lambda v: v not in ("pytorch", "keras")),
    "vocab_size": st.integers(max_value=0),
}


@SETTINGS
@given(
    data=st.data(), field=st.sampled_from(sorted(INVALID_VALUES)), model_type=st.sampled_from(sorted(MODEL_FAMILIES))
)
def test_random_invalid_configs_raise_only_validation_errors(data, field, model_type):
    value = data.draw(INVALID_VALUES[field])
    with pytest.raises((ValueError, StrictDataclassError)):
        MODEL_FAMILIES[model_type].config_class(**{field: value})


@SETTINGS
@given(data=st.data(), field=st.sampled_from(sorted(set(INVALID_VALUES) - {"vocab_size"})))
def test_random_invalid_recipes_raise_value_error(data, field):
    """Through the public recipe API every invalid model value is a RecipeError, which is a ValueError."""
    value = data.draw(INVALID_VALUES[field])
    with pytest.raises(RecipeError) as raised:
        recipe_from_dict({"model": {"type": "gru", field: value}})
    assert isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


# --- random recipes (issue 13): a valid recipe or one clear line, never another exception --------------------

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


# keys of every section, so that random values reach the type checks, the sections' own checks and the size estimate
SECTION_KEYS = [
    ("model", "hidden_size"),
    ("model", "embedding_dim"),
    ("model", "num_layers"),
    ("model", "pooling"),
    ("model", "bidirectional"),
    ("model", "classifier_hidden_sizes"),
    ("model", "dropout"),
    ("model", "type"),
    ("model", "frontend_pretrained"),
    ("tokenizer", "max_tokens"),
    ("tokenizer", "kind"),
    ("tokenizer", "max_length"),
    ("data", "validation_size"),
    ("data", "text_column"),
    ("data", "max_train_samples"),
    ("training", "learning_rate"),
    ("training", "eval_strategy"),
    ("training", "save_strategy"),
    ("training", "metrics"),
    ("training", "metric_for_best_model"),
    ("training", "early_stopping_patience"),
    ("hub", "push_to_hub"),
    ("hub", "language"),
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(changes=st.lists(st.tuples(st.sampled_from(SECTION_KEYS), values), min_size=1, max_size=3))
def test_random_changes_to_a_valid_recipe_give_a_valid_recipe_or_one_clear_line(monkeypatch, changes):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = [
        f"{section}.{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"
        for (section, key), value in changes
    ]
    overrides = [override.removesuffix("\n...") for override in overrides]
    try:
        loaded = load_recipe("quickstart", overrides=overrides)
    except RecipeError as error:
        assert "\n" not in str(error) and str(error).strip()
    else:
        assert isinstance(loaded, Recipe)


@settings(max_examples=60, deadline=None)
@given(data=recipes)
def test_random_dict_recipes_give_a_valid_recipe_or_one_clear_line(data):
    try:
        recipe_from_dict(data)
    except RecipeError as error:
        assert "\n" not in str(error)
