"""Recipes: every shipped recipe validates, and bad recipes give the promised one-line messages
(through the public loader, as ludwig's config-validation tests do)."""

import textwrap

import pytest

from hf_rnn import LSTMConfig
from hf_rnn.recipes import RecipeError, build_untrained_model, list_models, list_recipes, load_recipe


@pytest.mark.parametrize("name", list_recipes())
def test_every_shipped_recipe_validates(name):
    recipe = load_recipe(name)
    assert recipe.model.type in {"rnn", "lstm", "gru"}
    assert recipe.training.learning_rate >= 1e-4  # RNN-appropriate, not the Trainer's 5e-5


@pytest.mark.parametrize("name", list_models())
def test_every_model_file_builds(name):
    model = build_untrained_model(name)
    assert model.num_parameters() > 0


def test_seed_experiments_are_shipped():
    names = set(list_recipes())
    for model in ("simple_rnn", "birnn", "bigru", "bilstm", "bilstm_2layer"):
        assert {f"imdb_{model}_100", f"imdb_{model}_full"} <= names
    assert "rotten_tomatoes_bilstm" in names and "quickstart" in names
    assert load_recipe("imdb_bigru_100").tokenizer.max_length == 100
    assert load_recipe("imdb_bigru_full").tokenizer.max_length is None


def test_extends_and_overrides_merge_key_by_key(tmp_path):
    recipe = load_recipe("imdb_bigru_100", overrides=["training.learning_rate=3e-4", "model.hidden_size=32"])
    assert recipe.model.type == "gru" and recipe.model.config["hidden_size"] == 32
    assert recipe.model.config["bidirectional"] is True  # from configs/models/bigru.yaml
    assert recipe.training.learning_rate == 3e-4
    assert recipe.data.dataset == "imdb"  # from imdb_base.yaml
    config = recipe.model.build_config(vocab_size=100)
    assert isinstance(config.hidden_size, int) and config.hidden_size == 32


def test_resolved_recipe_round_trips(tmp_path):
    recipe = load_recipe("quickstart")
    path = tmp_path / "resolved.yaml"
    path.write_text(recipe.to_yaml())
    again = load_recipe(str(path))
    assert again.to_dict() | {"name": recipe.name} == recipe.to_dict()


def write(tmp_path, text: str, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


BAD_RECIPES = [
    # (YAML, message regex) - each message names the place and what is allowed
    ("trainin:\n  seed: 1\n", r"recipe.yaml:1: unknown key 'trainin' in the recipe\. Did you mean 'training'\?"),
    (
        "training:\n  learning_rat: 0.1\n",
        r"recipe.yaml:2: unknown key 'learning_rat' in training\. Did you mean 'learning_rate'\?",
    ),
    (
        "model:\n  type: lstm\n  hiden_size: 3\n",
        r"recipe.yaml:3: unknown key 'hiden_size' in model\. Did you mean 'hidden_size'",
    ),
    ("data:\n  text_colum: review\n", r"unknown key 'text_colum' in data\. Did you mean 'text_column'"),
    ("tokenizer:\n  max_token: 10\n", r"unknown key 'max_token' in tokenizer\. Did you mean 'max_tokens'"),
    ("training:\n  learning_rate: fast\n", r"recipe.yaml:2: training.learning_rate must be float, got 'fast'"),
    ("training:\n  per_device_train_batch_size: 0\n", r"per_device_train_batch_size must be positive, got 0"),
    ("training:\n  bf16: maybe\n", r"training.bf16 must be bool, got 'maybe'"),
    ("training:\n  eval_strategy: hourly\n", r"training.eval_strategy must be one of 'no', 'steps', 'epoch'"),
    (
        "model:\n  type: lstm\n  pooling: median\n",
        r"recipe.yaml:3: model.pooling: Field 'pooling' expected one of \('last', 'mean'",
    ),
    ("model:\n  type: transformer\n", r"model.type must be one of 'rnn', 'lstm', 'gru', got 'transformer'"),
    (
        "model:\n  type: lstm\n  hidden_size: -4\n",
        r"recipe.yaml:3: model: hidden_size must be a positive integer, got -4",
    ),
    ("model:\n  type: gru\n  nonlinearity: relu\n", r"model.nonlinearity applies to type 'rnn' only"),
    ("model: bilstm_3layer\n", r"model 'bilstm_3layer' not found.*Did you mean 'bilstm_2layer'\?"),
    ("data:\n  validation_size: 1.5\n", r"data: validation_size=1.5 is out of range"),
    ("tokenizer:\n  kind: sentencepiece\n", r"tokenizer.kind must be one of 'word_level', 'wordpiece', 'bpe'"),
    ("hub:\n  push_to_hub: true\n", r"push_to_hub is true but repo_id is not set"),
    ("training:\n  - 1\n  - 2\n", r"training must be a mapping of keys"),
    ("training:\n  seed: [1\n", r"recipe.yaml:3:1: YAML syntax error"),
    ("- just\n- a list\n", r"a recipe must be a YAML mapping of sections, got list"),
    ("extends: no_such_recipe\n", r"extends: recipe 'no_such_recipe' not found"),
    (
        "model:\n  type: gru\n  frontend: bert\n  frontend_config:\n    hidden_size: 32\n"
        "    hiden_dropout_prob: 0.3\n",
        r"recipe.yaml:6: unknown key 'hiden_dropout_prob' in model.frontend_config \(bert\)\. "
        r"Did you mean 'hidden_dropout_prob'\?",
    ),
    (
        "model:\n  type: gru\n  frontend: bert\n  frontend_config:\n    model_type: not_a_model\n",
        r"recipe.yaml:5: model.frontend_config.model_type: unknown encoder type 'not_a_model'",
    ),
]


@pytest.mark.parametrize("text,message", BAD_RECIPES, ids=[m for _, m in BAD_RECIPES])
def test_bad_recipes_give_their_message(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, text))


def test_a_valid_inline_frontend_config_builds(tmp_path):
    text = """
    model:
      type: gru
      hidden_size: 8
      frontend: bert
      frontend_config: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64,
                        hidden_dropout_prob: 0.3}
    """
    config = load_recipe(write(tmp_path, text)).model.build_config()
    assert config.frontend_config.hidden_dropout_prob == 0.3 and config.embedding_dim == 32


def test_errors_in_a_parent_recipe_point_at_the_parent(tmp_path):
    write(tmp_path, "training:\n  seed: 1\n  warmup_step: 3\n", name="parent.yaml")
    child = write(tmp_path, "extends: parent.yaml\ntraining:\n  seed: 2\n")
    with pytest.raises(RecipeError, match=r"parent.yaml:3: unknown key 'warmup_step'"):
        load_recipe(child)


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "extends: b.yaml\n", name="a.yaml")
    write(tmp_path, "extends: a.yaml\n", name="b.yaml")
    with pytest.raises(RecipeError, match=r"extends cycle: a.yaml -> b.yaml -> a.yaml"):
        load_recipe(str(tmp_path / "a.yaml"))


@pytest.mark.parametrize(
    "override,message",
    [
        ("training.epochs=3", r"--set training.epochs: unknown key 'epochs' in training"),
        ("training.learning_rate=abc", r"--set training.learning_rate: training.learning_rate must be float"),
        ("learning_rate", r"expected section.key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("quickstart", overrides=[override])


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="YAML syntax error"):
        load_recipe(path)


def test_non_utf8_recipe(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe(str(path))


def test_int_where_float_expected_is_accepted(tmp_path):
    recipe = load_recipe(write(tmp_path, "training:\n  learning_rate: 1\n  num_train_epochs: 2\n"))
    assert recipe.training.learning_rate == 1.0 and isinstance(recipe.training.num_train_epochs, float)
    assert isinstance(recipe.model.build_config(), LSTMConfig)
