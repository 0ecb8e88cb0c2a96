"""Model tests in the style of transformers' `tests/models/*/test_modeling_*.py`: a tiny tester plus common checks,
parametrized over every model class, so a newly registered model type is covered with no new test code."""

import itertools

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

from hf_rnn import MODEL_FAMILIES, summary
from hf_rnn.configuration_rnn import POOLINGS

MODEL_TYPES = sorted(MODEL_FAMILIES)


class RecurrentModelTester:
    """Tiny configs and inputs: vocabulary 99, embedding 16, hidden 8, batch 4, sequence 7."""

    batch_size = 4
    seq_length = 7
    vocab_size = 99
    num_labels = 3

    def __init__(self, model_type: str, **overrides):
        family = MODEL_FAMILIES[model_type]
        self.config_class, self.base_class = family.config_class, family.base_model
        self.sequence_class = family.heads["sequence_classification"]
        self.token_class = family.heads["token_classification"]
        self.overrides = overrides

    def get_config(self, **extra):
        kwargs = dict(
            vocab_size=self.vocab_size,
            embedding_dim=16,
            hidden_size=8,
            id2label={i: f"label_{i}" for i in range(self.num_labels)},
        )
        return self.config_class(**{**kwargs, **self.overrides, **extra})

    def prepare_inputs(self, seed: int = 0) -> dict[str, torch.Tensor]:
        """Right-padded batch whose rows have lengths 7, 5, 3 and 1."""
        generator = torch.Generator().manual_seed(seed)
        input_ids = torch.randint(2, self.vocab_size, (self.batch_size, self.seq_length), generator=generator)
        lengths = torch.tensor([7, 5, 3, 1])
        attention_mask = (torch.arange(self.seq_length) < lengths.unsqueeze(1)).long()
        return {"input_ids": input_ids * attention_mask, "attention_mask": attention_mask}


def all_variants():
    for model_type, bidirectional, pooling in itertools.product(MODEL_TYPES, (False, True), POOLINGS):
        yield pytest.param(
            model_type, bidirectional, pooling, id=f"{model_type}-{'bi' if bidirectional else 'uni'}-{pooling}"
        )


@pytest.mark.parametrize("model_type,bidirectional,pooling", all_variants())
def test_sequence_classification_shapes_and_padding_exactness(model_type, bidirectional, pooling):
    tester = RecurrentModelTester(model_type, bidirectional=bidirectional, pooling=pooling, num_layers=2)
    model = tester.sequence_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        batched = model(**inputs, output_hidden_states=True)
        assert batched.logits.shape == (tester.batch_size, tester.num_labels)
        assert len(batched.hidden_states) == 3  # embeddings + 2 layers
        # each row alone, without padding, gives the same logits as inside the padded batch
        for row, length in enumerate(inputs["attention_mask"].sum(1).tolist()):
            alone = model(input_ids=inputs["input_ids"][row : row + 1, :length]).logits
            torch.testing.assert_close(alone[0], batched.logits[row], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_token_classification_padding_exactness(model_type, merge_mode):
    tester = RecurrentModelTester(model_type, bidirectional=True, merge_mode=merge_mode)
    model = tester.token_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        batched = model(**inputs).logits
        assert batched.shape == (tester.batch_size, tester.seq_length, tester.num_labels)
        for row, length in enumerate(inputs["attention_mask"].sum(1).tolist()):
            alone = model(input_ids=inputs["input_ids"][row : row + 1, :length]).logits
            torch.testing.assert_close(alone[0], batched[row, :length], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_extra_padding_leaves_outputs_unchanged(model_type):
    tester = RecurrentModelTester(model_type, bidirectional=True, pooling="mean")
    model = tester.base_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    padded = {k: torch.nn.functional.pad(v, (0, 5)) for k, v in inputs.items()}
    with torch.no_grad():
        short, long = model(**inputs), model(**padded)
    torch.testing.assert_close(short.pooler_output, long.pooler_output, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(long.last_hidden_state[:, : tester.seq_length], short.last_hidden_state)
    assert long.last_hidden_state[:, tester.seq_length :].abs().max() == 0


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_packed_and_padded_paths_agree(model_type):
    tester = RecurrentModelTester(model_type, bidirectional=True, num_layers=2)
    padded = tester.sequence_class(tester.get_config(sequence_packing="never")).eval()
    packed = tester.sequence_class(tester.get_config(sequence_packing="always")).eval()
    packed.load_state_dict(padded.state_dict())
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        torch.testing.assert_close(packed(**inputs).logits, padded(**inputs).logits, atol=1e-5, rtol=1e-5)


def test_mask_zero_without_attention_mask():
    """Like Keras' `mask_zero=True`: with no attention_mask, padding ids are masked."""
    tester = RecurrentModelTester("hf_lstm", bidirectional=True)
    model = tester.sequence_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=inputs["input_ids"]).logits, model(**inputs).logits)


def test_left_padding_is_rejected():
    tester = RecurrentModelTester("hf_gru")
    model = tester.sequence_class(tester.get_config())
    with pytest.raises(ValueError, match="right-padded"):
        model(input_ids=torch.tensor([[0, 5, 6]]), attention_mask=torch.tensor([[0, 1, 1]]))


def test_input_ids_xor_inputs_embeds():
    model = RecurrentModelTester("hf_rnn").base_class(RecurrentModelTester("hf_rnn").get_config())
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
    embeds = torch.randn(2, 5, 16)
    assert model(inputs_embeds=embeds).last_hidden_state.shape == (2, 5, 8)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("head", ["sequence", "token"])
def test_save_load_round_trip_and_auto_classes(model_type, head, tmp_path):
    tester = RecurrentModelTester(model_type, bidirectional=True, classifier_hidden_sizes=[12])
    model_class = tester.sequence_class if head == "sequence" else tester.token_class
    auto_class = AutoModelForSequenceClassification if head == "sequence" else AutoModelForTokenClassification
    model = model_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert type(AutoConfig.from_pretrained(tmp_path)) is tester.config_class
    loaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(loaded) is model_class
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is tester.base_class
    with torch.no_grad():
        expected, got = model.backbone(**inputs), base.eval()(**inputs)
        torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state)
        if head == "sequence":
            torch.testing.assert_close(got.pooler_output, expected.pooler_output)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_a_tagger_with_attention_pooling_has_no_parameter_without_gradient(model_type):
    # DistributedDataParallel fails on parameters without gradients: a tagger builds no pooler it would leave unused
    tester = RecurrentModelTester(model_type, bidirectional=True, pooling="attention", classifier_hidden_sizes=[12])
    model = tester.token_class(tester.get_config())
    inputs = tester.prepare_inputs()
    model(**inputs, labels=torch.randint(0, tester.num_labels, inputs["input_ids"].shape)).loss.backward()
    assert model.backbone.pooler is None
    assert [name for name, param in model.named_parameters() if param.grad is None] == []


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_tuple_and_dict_outputs_agree(model_type):
    tester = RecurrentModelTester(model_type)
    model = tester.sequence_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    labels = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        as_dict = model(**inputs, labels=labels)
        as_tuple = model(**inputs, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert torch.equal(as_tuple[0], as_dict.loss)
    assert torch.equal(as_tuple[1], as_dict.logits)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_every_parameter_gets_a_gradient(model_type, pooling):
    tester = RecurrentModelTester(model_type, bidirectional=True, num_layers=2, pooling=pooling)
    model = tester.sequence_class(tester.get_config(classifier_hidden_sizes=[6])).train()
    inputs = tester.prepare_inputs()
    loss = model(**inputs, labels=torch.tensor([0, 1, 2, 0])).loss
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"No gradient for {name}"
        assert torch.isfinite(param.grad).all(), f"Non-finite gradient for {name}"
    # the padding row of the embedding gets no gradient, by design (padding_idx)
    assert model.get_input_embeddings().weight.grad[0].abs().sum() == 0


@pytest.mark.parametrize(
    "problem_type,labels,expected_loss",
    [
        ("single_label_classification", torch.tensor([0, 2, 1, 1]), "cross_entropy"),
        ("multi_label_classification", torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0]]), "bce"),
    ],
)
def test_loss_per_problem_type(problem_type, labels, expected_loss):
    tester = RecurrentModelTester("hf_lstm")
    model = tester.sequence_class(tester.get_config(problem_type=problem_type)).eval()
    output = model(**tester.prepare_inputs(), labels=labels)
    if expected_loss == "cross_entropy":
        reference = torch.nn.functional.cross_entropy(output.logits, labels)
    else:
        reference = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, labels)
    torch.testing.assert_close(output.loss, reference)


def test_regression_loss_and_inferred_problem_type():
    tester = RecurrentModelTester("hf_gru")
    model = tester.sequence_class(tester.get_config(id2label={0: "score"})).eval()
    labels = torch.tensor([0.5, 1.0, -1.0, 2.0])
    output = model(**tester.prepare_inputs(), labels=labels)
    assert model.config.problem_type == "regression"
    torch.testing.assert_close(output.loss, torch.nn.functional.mse_loss(output.logits.squeeze(-1), labels))


def test_token_classification_ignores_minus_100():
    tester = RecurrentModelTester("hf_rnn")
    model = tester.token_class(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    labels = torch.randint(0, 3, (4, 7)).masked_fill(inputs["attention_mask"] == 0, -100)
    output = model(**inputs, labels=labels)
    keep = labels != -100
    torch.testing.assert_close(output.loss, torch.nn.functional.cross_entropy(output.logits[keep], labels[keep]))


def test_keras_initializer():
    tester = RecurrentModelTester("hf_lstm")
    model = tester.base_class(tester.get_config(initializer="keras", hidden_size=8, embedding_dim=8))
    cell = model.layers[0].forward_cell
    # orthogonal recurrent kernel, zero biases but a unit forget gate, small uniform embeddings
    gram = cell.weight_hh_l0.T @ cell.weight_hh_l0
    torch.testing.assert_close(gram, torch.eye(8), atol=1e-5, rtol=1e-5)
    assert torch.equal(cell.bias_ih_l0[8:16], torch.ones(8))
    assert cell.bias_ih_l0[:8].abs().sum() == 0 and cell.bias_hh_l0.abs().sum() == 0
    assert model.get_input_embeddings().weight.abs().max() <= 0.05


def test_summary_counts_match_pytorch_formulas():
    tester = RecurrentModelTester("hf_lstm")
    config = tester.get_config(vocab_size=1000, embedding_dim=32, hidden_size=16, id2label={0: "neg", 1: "pos"})
    model = tester.sequence_class(config)
    table = summary(model, print_fn=None)
    by_name = {row.name: row for row in table.rows}
    assert by_name["backbone.layers.0"].params == 4 * (16 * 32 + 16 * 16 + 16 + 16) == 3200
    assert by_name["backbone.embeddings"].params == 32000
    assert by_name["backbone.layers.0"].output_shape == "(batch, time, 16)"
    assert table.total_params == sum(p.numel() for p in model.parameters())
    assert table.non_trainable_params == 0
    assert "Total params: 35,234" in str(table)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_empty_and_all_padding_inputs(model_type, pooling):
    """An empty text (zero tokens) and an all-padding row give finite outputs instead of a crash."""
    tester = RecurrentModelTester(model_type, bidirectional=True, pooling=pooling)
    model = tester.sequence_class(tester.get_config()).eval()
    with torch.no_grad():
        empty = model(input_ids=torch.zeros(2, 0, dtype=torch.long)).logits
        padding = model(input_ids=torch.zeros(2, 3, dtype=torch.long)).logits
    assert empty.shape == (2, tester.num_labels) and torch.isfinite(empty).all()
    torch.testing.assert_close(empty, padding)


def test_from_pretrained_with_loading_info(tmp_path):
    tester = RecurrentModelTester("hf_gru")
    tester.sequence_class(tester.get_config()).save_pretrained(tmp_path)
    model, info = tester.sequence_class.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(model, tester.sequence_class) and not info["missing_keys"]


def test_max_pooling_of_an_empty_row_is_zero():
    tester = RecurrentModelTester("hf_lstm", pooling="max")
    model = tester.base_class(tester.get_config()).eval()
    with torch.no_grad():
        pooled = model(input_ids=torch.tensor([[5, 6, 7], [0, 0, 0]])).pooler_output
    assert pooled[1].abs().max() == 0 and pooled[0].abs().max() > 0
