"""The registry (named fields per cell type) and the timm-style front door: create_model, list_models, hf-rnn list."""

import subprocess
import sys
import textwrap

import pytest
import torch

import hf_rnn
from hf_rnn import MODEL_FAMILIES, GRUForSequenceClassification, GRUForTokenClassification, create_model, list_models
from hf_rnn.cli import main
from hf_rnn.recipes import RecipeError, load_recipe
from hf_rnn.registry import head_class, model_description, tasks


def test_families_have_named_fields():
    family = MODEL_FAMILIES["hf_gru"]
    assert family.config_class is hf_rnn.GRUConfig and family.base_model is hf_rnn.GRUModel
    assert family.heads["sequence_classification"] is GRUForSequenceClassification
    assert family.heads["token_classification"] is GRUForTokenClassification
    assert head_class("hf_lstm") is hf_rnn.LSTMForSequenceClassification
    assert {"sequence_classification", "token_classification"} <= set(tasks())
    with pytest.raises(ValueError, match="'hf_bert' is not an hf_rnn model type; hf_rnn has hf_rnn, hf_lstm, hf_gru"):
        head_class("hf_bert")
    with pytest.raises(ValueError, match="hf_gru has no 'translation' head"):
        head_class("hf_gru", "translation")


def test_list_models_filters_with_wildcards():
    assert list_models("*gru*") == ["bigru", "bigru_2layer", "minilm_bigru"]
    assert list_models("bi*", exclude_filters="*_2layer") == ["bigru", "bilstm", "birnn"]
    assert list_models() == sorted(list_models())
    assert list_models("nothing*") == []


def test_create_model_builds_a_definition_with_overrides():
    model = create_model("bigru", num_labels=3, hidden_size=32, dropout=None)
    assert type(model) is GRUForSequenceClassification
    # the override applies, the None is dropped, the definition's other values stand
    assert (model.config.num_labels, model.config.hidden_size, model.config.embedding_dim) == (3, 32, 128)
    assert model.config.bidirectional and model.config.classifier_hidden_sizes == [64]
    tagger = create_model("bilstm", task="token_classification", vocab_size=500, num_labels=5)
    assert type(tagger) is hf_rnn.LSTMForTokenClassification and tagger.config.vocab_size == 500
    logits = tagger(input_ids=torch.tensor([[3, 4, 5]])).logits
    assert logits.shape == (1, 3, 5)


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: create_model("bigur"),
            r"Unknown model 'bigur'\. Did you mean 'bigru'\? Models: bigru, bigru_2layer, bilstm",
        ),
        (
            lambda: create_model("bigru", hiden_size=3),
            r"unknown key 'hiden_size' in model\. Did you mean 'hidden_size'",
        ),
        (lambda: create_model("bigru", hidden_size=0), r"model: hidden_size must be a positive integer, got 0"),
        (lambda: create_model("bigru", task="tagging"), r"model.task 'tagging' is not a task of hf_rnn's models"),
        (lambda: create_model("bigru", embedding_init="glove-6b-50d"), r"embedding_init loads word vectors"),
    ],
)
def test_create_model_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_create_model_loads_a_pretrained_encoder():
    from transformers import AutoModel

    from hf_rnn.frontends import resolve_frontend

    model = create_model("minilm_bigru", num_labels=2)
    random = create_model("minilm_bigru", num_labels=2, pretrained=False)
    reference = AutoModel.from_pretrained(resolve_frontend("minilm"))
    name = "embeddings.word_embeddings.weight"
    loaded = dict(model.backbone.frontend.named_parameters())[name]
    assert torch.equal(loaded, dict(reference.named_parameters())[name])
    assert not torch.equal(dict(random.backbone.frontend.named_parameters())[name], loaded)


def test_every_model_definition_has_a_description_and_builds():
    for name in list_models():
        assert model_description(name), f"configs/models/{name}.yaml has no description"
        assert isinstance(create_model(name, pretrained=False), hf_rnn.RecurrentPreTrainedModel)


def test_hf_rnn_list_shows_model_descriptions(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert f"  {name:28} {model_description(name)}" in out


def test_a_recipe_refuses_a_task_training_does_not_support(tmp_path):
    """token_classification used to pass validation and fail after the data was loaded."""
    path = tmp_path / "recipe.yaml"
    path.write_text("model:\n  base: bilstm\n  task: token_classification\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml:3: model.task 'token_classification': recipes train "):
        load_recipe(str(path))


def test_architecture_errors_point_at_the_fields_line(tmp_path):
    """validate_architecture names its field (error.field), so the recipe error points at that key's line."""
    path = tmp_path / "recipe.yaml"
    path.write_text("model:\n  type: gru\n  hidden_size: 8\n  classifier_hidden_sizes: [4, 0]\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml:4: model: classifier_hidden_sizes must hold positive"):
        load_recipe(str(path))


def test_register_head_adds_a_task_that_the_auto_class_loads(tmp_path):
    """In a subprocess, so the extra head does not leak into other tests."""
    script = textwrap.dedent(
        f"""
        from transformers import AutoModelForMaskedLM
        import hf_rnn
        from hf_rnn.registry import register_head, tasks

        class LSTMForTest(hf_rnn.LSTMForSequenceClassification):
            pass

        register_head("test_task", {{"hf_lstm": LSTMForTest}}, AutoModelForMaskedLM)
        assert "test_task" in tasks() and hf_rnn.MODEL_FAMILIES["hf_lstm"].heads["test_task"] is LSTMForTest
        model = hf_rnn.create_model("bilstm", task="test_task", num_labels=2)
        model.save_pretrained({str(tmp_path)!r})
        assert type(AutoModelForMaskedLM.from_pretrained({str(tmp_path)!r})) is LSTMForTest
        try:
            register_head("other_task", {{"hf_lstm": LSTMForTest}})
        except ValueError as error:
            assert "pass its transformers Auto class" in str(error)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
