"""Config validation: bad values fail at construction and at `from_pretrained`, naming the field and the allowed
values."""

import json

import pytest
from huggingface_hub.errors import StrictDataclassError

from hf_rnn import MODEL_FAMILIES, GRUConfig, LSTMConfig, RNNConfig

CONFIG_ERRORS = (ValueError, StrictDataclassError)

BAD_VALUES = [
    ({"pooling": "median"}, "pooling.*'last', 'mean', 'max', 'first_last', 'attention'"),
    ({"merge_mode": "avg"}, "merge_mode.*'concat', 'sum', 'mul', 'ave'"),
    ({"hidden_size": 0}, "hidden_size must be a positive integer, got 0"),
    ({"num_layers": -1}, "num_layers must be a positive integer, got -1"),
    ({"hidden_size": "big"}, "hidden_size.*expected int"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"classifier_dropout": -0.1}, r"classifier_dropout must be in \[0, 1\)"),
    ({"classifier_hidden_sizes": [64, 0]}, "classifier_hidden_sizes must hold positive integers"),
    ({"classifier_activation": "swish"}, "classifier_activation.*'relu'"),
    ({"initializer": "xavier"}, "initializer.*'pytorch', 'keras'"),
    ({"pad_token_id": 20000}, r"pad_token_id must be in \[0, vocab_size=20000\)"),
    ({"frontend": "bert"}, "frontend='bert' needs frontend_config"),
    ({"frontend": "elmo"}, "frontend.*'none', 'bert'"),
]


@pytest.mark.parametrize("config_class", [RNNConfig, LSTMConfig, GRUConfig])
@pytest.mark.parametrize("kwargs,message", BAD_VALUES)
def test_bad_values_raise_at_construction(config_class, kwargs, message):
    with pytest.raises(CONFIG_ERRORS, match=message):
        config_class(**kwargs)


def test_nonlinearity_is_validated_for_simple_rnn():
    assert RNNConfig(nonlinearity="relu").nonlinearity == "relu"
    with pytest.raises(CONFIG_ERRORS, match="nonlinearity.*'tanh', 'relu'"):
        RNNConfig(nonlinearity="sigmoid")


@pytest.mark.parametrize("kwargs,message", BAD_VALUES[:6])
def test_edited_config_json_fails_at_from_pretrained(tmp_path, kwargs, message):
    LSTMConfig().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    data.update(kwargs)
    path.write_text(json.dumps(data))
    with pytest.raises(CONFIG_ERRORS, match=message):
        LSTMConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("model_type", sorted(MODEL_FAMILIES))
def test_round_trip_keeps_every_field(model_type, tmp_path):
    config_class = MODEL_FAMILIES[model_type].config_class
    config = config_class(
        vocab_size=500,
        hidden_size=12,
        bidirectional=True,
        merge_mode="ave",
        pooling="max",
        dropout=0,  # an int from YAML is accepted and stored as a float
        classifier_hidden_sizes=[32],
        id2label={0: "neg", 1: "pos"},
    )
    config.save_pretrained(tmp_path)
    loaded = config_class.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.num_labels == 2 and loaded.label2id == {"neg": 0, "pos": 1}
    assert isinstance(loaded.dropout, float)


def test_config_json_holds_no_training_hyperparameters(tmp_path):
    LSTMConfig().save_pretrained(tmp_path)
    keys = set(json.loads((tmp_path / "config.json").read_text()))
    assert not keys & {"learning_rate", "num_train_epochs", "batch_size", "seed", "weight_decay", "max_grad_norm"}


def test_output_sizes_follow_merge_mode_and_pooling():
    assert LSTMConfig(hidden_size=8, bidirectional=True).output_size == 16
    assert LSTMConfig(hidden_size=8, bidirectional=True, merge_mode="sum").output_size == 8
    assert LSTMConfig(hidden_size=8, pooling="first_last").pooled_size == 16
