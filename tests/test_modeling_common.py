"""Common checks for every registered head, in the manner of transformers' `ModelTesterMixin`: parametrized over
`hf_rnn.MODEL_FAMILIES`, so a head added with `register_head` is tested with no new test code.

Labels come from `TASK_LABELS`; a task not listed there is treated as language modelling (labels = input ids)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig

from hf_rnn import MODEL_FAMILIES
from hf_rnn.registry import TASK_AUTO_CLASSES

BATCH, TIME, VOCAB, NUM_LABELS = 3, 6, 40, 3

# task -> labels for a batch of input ids
TASK_LABELS = {
    "sequence_classification": lambda ids: torch.arange(ids.shape[0]) % NUM_LABELS,
    "token_classification": lambda ids: (ids % NUM_LABELS).masked_fill(ids == 0, -100),
}


def all_heads():
    for model_type, family in sorted(MODEL_FAMILIES.items()):
        for task, head in sorted(family.heads.items()):
            yield pytest.param(family, task, head, id=f"{model_type}-{task}")


class RecurrentModelTester:
    """Tiny sizes (vocabulary 40, embedding 8, hidden 4, two bidirectional layers) and a right-padded batch."""

    def __init__(self, family, task, head, **overrides):
        self.family, self.task, self.head = family, task, head
        self.overrides = overrides

    def get_config(self, **extra):
        # a language model reads left to right only
        bidirectional = not getattr(self.head, "_is_stateful", False)
        fields = dict(vocab_size=VOCAB, embedding_dim=8, hidden_size=4, num_layers=2, bidirectional=bidirectional)
        return self.family.config_class(
            **fields, id2label={i: f"l{i}" for i in range(NUM_LABELS)}, **self.overrides, **extra
        )

    def prepare_inputs(self, labels: bool = False) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        lengths = torch.tensor([TIME, 4, 1])
        mask = (torch.arange(TIME) < lengths.unsqueeze(1)).long()
        ids = torch.randint(1, VOCAB, (BATCH, TIME), generator=generator) * mask
        inputs = {"input_ids": ids, "attention_mask": mask}
        if labels:
            inputs["labels"] = TASK_LABELS.get(self.task, lambda x: x)(ids)
        return inputs

    def model(self, **extra):
        torch.manual_seed(0)
        return self.head(self.get_config(**extra))


@pytest.mark.parametrize("family,task,head", list(all_heads()))
class TestEveryHead:
    def test_forward_gives_finite_logits_and_a_loss(self, family, task, head):
        tester = RecurrentModelTester(family, task, head)
        model = tester.model().eval()
        output = model(**tester.prepare_inputs(labels=True), output_hidden_states=True)
        assert output.logits.shape[0] == BATCH and torch.isfinite(output.logits).all()
        assert output.loss.ndim == 0 and torch.isfinite(output.loss)
        # embeddings and each of the two layers
        assert len(output.hidden_states) == 3

    def test_tuple_and_dict_outputs_agree(self, family, task, head):
        tester = RecurrentModelTester(family, task, head)
        model = tester.model().eval()
        inputs = tester.prepare_inputs(labels=True)
        with torch.no_grad():
            as_dict = model(**inputs)
            as_tuple = model(**inputs, return_dict=False)
        assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict.to_tuple())
        for a, b in zip(as_tuple, as_dict.to_tuple()):
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b)
            else:  # a language model's recurrent cache: a new object each call
                assert type(a) is type(b)
        # config.return_dict=False means tuples too, as in transformers
        model.config.return_dict = False
        with torch.no_grad():
            assert isinstance(model(**inputs), tuple)

    def test_unknown_keyword_arguments_are_refused_not_dropped(self, family, task, head):
        tester = RecurrentModelTester(family, task, head)
        model = tester.model().eval()
        inputs = tester.prepare_inputs()
        with pytest.raises(TypeError, match=r"unexpected keyword arguments 'input_lengths'"):
            model(**inputs, input_lengths=torch.tensor([6, 4, 1]))
        with pytest.raises(ValueError, match="output_attentions=True: recurrent models compute no attention"):
            model(**inputs, output_attentions=True)
        # what a generic caller passes that the model can honour is accepted
        model(**inputs, output_attentions=False)

    def test_every_parameter_gets_a_gradient(self, family, task, head):
        # attention pooling has parameters of its own: a head that reads every step must not build the pooler
        tester = RecurrentModelTester(family, task, head, pooling="attention")
        model = tester.model().train()
        model(**tester.prepare_inputs(labels=True)).loss.backward()
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, f"No gradient for {name}"
            assert torch.isfinite(parameter.grad).all(), f"non-finite gradient for {name}"

    def test_save_and_load_with_the_tasks_auto_class(self, family, task, head, tmp_path):
        tester = RecurrentModelTester(family, task, head)
        model = tester.model().eval()
        model.save_pretrained(tmp_path)
        assert AutoConfig.from_pretrained(tmp_path).model_type == family.model_type
        loaded = TASK_AUTO_CLASSES[task].from_pretrained(tmp_path).eval()
        assert type(loaded) is head
        inputs = tester.prepare_inputs()
        with torch.no_grad():
            assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)

    def test_the_base_model_is_the_familys(self, family, task, head):
        model = RecurrentModelTester(family, task, head).model()
        assert type(model.base_model) is family.base_model and model.config_class is family.config_class


# --- numerics: the refactor changes no output ---------------------------------------------------------------

# every field given explicitly, so a later change of a default does not move the reference
_REFERENCE_BASE = dict(
    vocab_size=50,
    embedding_dim=12,
    hidden_size=6,
    num_layers=2,
    bidirectional=True,
    merge_mode="concat",
    pooling="attention",
    embedding_dropout=0.0,
    dropout=0.0,
    classifier_hidden_sizes=[5],
    classifier_activation="tanh",
    classifier_dropout=0.0,
    pad_token_id=0,
    initializer="pytorch",
    sequence_packing="never",
    id2label={0: "a", 1: "b", 2: "c"},
)
_REFERENCE_VARIANTS = {
    "attention": {},
    "last_uni": dict(bidirectional=False, pooling="last", num_layers=1, classifier_hidden_sizes=[]),
    "keras_mean": dict(initializer="keras", pooling="mean", merge_mode="sum"),
}
# the modeling code before the v5 forward conventions, run from git history as the reference
_REFERENCE_COMMIT = "33c4d60d37fbd3019b26c27a90498f9560fd9397"
_REFERENCE_SCRIPT = """
import json, sys, torch
from safetensors.torch import save_file
sys.path.insert(0, sys.argv[1])
from reference_rnn import configuration_rnn, modeling_rnn
base, variants, out = json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
base["id2label"] = {int(k): v for k, v in base["id2label"].items()}
mask = (torch.arange(6) < torch.tensor([6, 4, 1]).unsqueeze(1)).long()
ids = torch.randint(1, base["vocab_size"], (3, 6), generator=torch.Generator().manual_seed(0)) * mask
tensors = {"input_ids": ids, "attention_mask": mask}
for model_type, cell in (("hf_rnn", "RNN"), ("hf_lstm", "LSTM"), ("hf_gru", "GRU")):
    for variant, fields in variants.items():
        for task, head in (("sequence_classification", "Sequence"), ("token_classification", "Token")):
            torch.manual_seed(1234)
            config = getattr(configuration_rnn, cell + "Config")(**{**base, **fields})
            model = getattr(modeling_rnn, f"{cell}For{head}Classification")(config).eval()
            with torch.no_grad():
                tensors[f"{model_type}/{variant}/{task}"] = model(input_ids=ids, attention_mask=mask).logits
save_file({k: v.contiguous() for k, v in tensors.items()}, out)
"""


@pytest.fixture(scope="module")
def reference_package(tmp_path_factory) -> Path:
    """A folder holding `reference_rnn`: main 33c4d60's configuration_rnn.py and modeling_rnn.py from git history."""
    root = Path(__file__).parent.parent
    package = tmp_path_factory.mktemp("reference") / "reference_rnn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("configuration_rnn.py", "modeling_rnn.py"):
        shown = subprocess.run(
            ["git", "show", f"{_REFERENCE_COMMIT}:hf_rnn/{name}"], cwd=root, capture_output=True, text=True
        )
        if shown.returncode != 0:
            pytest.skip(f"the reference commit is not in this checkout's history: {shown.stderr.strip()}")
        (package / name).write_text(shown.stdout)
    return package.parent


@pytest.fixture(scope="module")
def reference_logits(reference_package) -> dict[str, torch.Tensor]:
    """The logits of main 33c4d60's modeling_rnn.py, computed in a subprocess from the files in git history."""
    package = reference_package / "reference_rnn"
    out = package.parent / "logits.safetensors"
    subprocess.run(
        [
            sys.executable,
            "-c",
            _REFERENCE_SCRIPT,
            str(package.parent),
            json.dumps(_REFERENCE_BASE),
            json.dumps(_REFERENCE_VARIANTS),
            str(out),
        ],
        check=True,
    )
    return load_file(str(out))


_REFERENCE_KEYS = [
    f"{model_type}/{variant}/{task}"
    for model_type in ("hf_gru", "hf_lstm", "hf_rnn")
    for variant in sorted(_REFERENCE_VARIANTS)
    for task in ("sequence_classification", "token_classification")
    # changed on purpose: a tagger no longer builds the attention pooler it never ran (its parameters had no
    # gradients, which DistributedDataParallel refuses), so seeded construction draws fewer random numbers
    if (variant, task) != ("attention", "token_classification")
]


@pytest.mark.parametrize("key", _REFERENCE_KEYS)
def test_same_config_and_seed_give_the_same_logits_as_before(key, reference_logits):
    """Seeded construction and forward reproduce, bit for bit, the logits of main 33c4d60's modeling_rnn.py (before
    the v5 forward conventions), run from git history."""
    model_type, variant, task = key.split("/")
    family = MODEL_FAMILIES[model_type]
    torch.manual_seed(1234)
    model = family.heads[task](family.config_class(**{**_REFERENCE_BASE, **_REFERENCE_VARIANTS[variant]})).eval()
    inputs = {name: reference_logits[name] for name in ("input_ids", "attention_mask")}
    with torch.no_grad():
        logits = model(**inputs).logits
    assert torch.equal(logits, reference_logits[key])


_OLD_CHECKPOINT_SCRIPT = """
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from reference_rnn import configuration_rnn, modeling_rnn
encoder = dict(model_type="bert", vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=24)
variants = {
    "embedding": {},
    "layer_mix": dict(frontend="bert", frontend_config=encoder, frontend_output="layer_mix", embedding_dim=16),
}
ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
logits = {}
for name, fields in variants.items():
    torch.manual_seed(0)
    config = configuration_rnn.GRUConfig(vocab_size=40, hidden_size=8, bidirectional=True, **fields)
    model = modeling_rnn.GRUForSequenceClassification(config).eval()
    with torch.no_grad():
        model.backbone.layer_weights.add_(torch.arange(3.0)) if name == "layer_mix" else None
        logits[name] = model(input_ids=ids, attention_mask=(ids > 0).long()).logits.tolist()
    model.save_pretrained(f"{sys.argv[2]}/{name}")
print(json.dumps(logits))
"""


def test_checkpoints_of_the_first_release_load_and_new_ones_keep_their_names(reference_package, tmp_path):
    """Files written by 33c4d60's code (`embeddings.weight`, `frontend.*`, `layer_weights`) load into the current
    module tree, through `from_pretrained` and plain `load_state_dict`; saving writes the same names again."""
    from transformers import AutoModelForSequenceClassification

    run = subprocess.run(
        [sys.executable, "-c", _OLD_CHECKPOINT_SCRIPT, str(reference_package), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(run.stdout.strip().splitlines()[-1])
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    inputs = {"input_ids": ids, "attention_mask": (ids > 0).long()}
    for name, logits in expected.items():
        old_keys = set(load_file(str(tmp_path / name / "model.safetensors")))
        assert ("backbone.layer_weights" in old_keys) is (name == "layer_mix")
        model = AutoModelForSequenceClassification.from_pretrained(tmp_path / name).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(**inputs).logits, torch.tensor(logits))
        fresh = type(model)(model.config).eval()
        fresh.load_state_dict(load_file(str(tmp_path / name / "model.safetensors")))
        with torch.no_grad():
            torch.testing.assert_close(fresh(**inputs).logits, torch.tensor(logits))
        model.save_pretrained(tmp_path / f"{name}-again")
        assert set(load_file(str(tmp_path / f"{name}-again" / "model.safetensors"))) == old_keys


def test_multi_target_regression_as_bert_does():
    """problem_type="regression" with several labels: MSE over every target, as BertForSequenceClassification."""
    family = MODEL_FAMILIES["hf_lstm"]
    config = family.config_class(vocab_size=VOCAB, embedding_dim=8, hidden_size=4, num_labels=3)
    config.problem_type = "regression"
    model = family.heads["sequence_classification"](config).eval()
    inputs = RecurrentModelTester(family, "sequence_classification", None).prepare_inputs()
    targets = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.1, 0.2], [1.0, 1.0, 1.0]])
    output = model(**inputs, labels=targets)
    assert output.logits.shape == (BATCH, 3)
    assert torch.allclose(output.loss, torch.nn.functional.mse_loss(output.logits, targets))
    # float labels with several labels and no problem_type stay multi-label (BCE), as in transformers
    config.problem_type = None
    multi = model(**inputs, labels=(targets > 0.4).float())
    assert config.problem_type == "multi_label_classification" and torch.isfinite(multi.loss)
