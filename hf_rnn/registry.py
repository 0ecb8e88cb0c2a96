"""The model registry: each cell type's config class, base model and task heads by name, and the timm-style front
door over the model definitions in `configs/models/`.

```python
>>> import hf_rnn
>>> hf_rnn.list_models("*gru*")
['bigru', 'bigru_2layer', 'minilm_bigru']
>>> model = hf_rnn.create_model("bigru", num_labels=3, hidden_size=32)
>>> hf_rnn.MODEL_FAMILIES["hf_gru"].heads["sequence_classification"].__name__
'GRUForSequenceClassification'
```

Another module adds a task head with [`register_head`], which also registers it with the transformers Auto class
of its task; every model test runs over the registry, so a new head is tested with no new test code.
"""

import difflib
import fnmatch
from dataclasses import dataclass, field

import yaml
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PreTrainedModel,
)

from .configuration_rnn import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .modeling_rnn import (
    GRUForSequenceClassification,
    GRUForTokenClassification,
    GRUModel,
    LSTMForSequenceClassification,
    LSTMForTokenClassification,
    LSTMModel,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
)
from .utils import package_data_dir

MODELS_DIR = package_data_dir("configs") / "models"

# task -> the transformers Auto class that loads its heads (`register_head` adds to it)
TASK_AUTO_CLASSES: dict[str, type] = {
    "sequence_classification": AutoModelForSequenceClassification,
    "token_classification": AutoModelForTokenClassification,
}


@dataclass
class ModelFamily:
    """One cell type: its config class, its bare model and a head per task.

    Args:
        config_class (`type[RecurrentConfig]`): e.g. `LSTMConfig`.
        base_model (`type[PreTrainedModel]`): the bare encoder, e.g. `LSTMModel`.
        heads (`dict[str, type[PreTrainedModel]]`): task name (a key of `TASK_AUTO_CLASSES`) -> head class.
    """

    config_class: type[RecurrentConfig]
    base_model: type[PreTrainedModel]
    heads: dict[str, type[PreTrainedModel]] = field(default_factory=dict)

    @property
    def model_type(self) -> str:
        return self.config_class.model_type


# model type (`config.model_type`) -> its family
MODEL_FAMILIES: dict[str, ModelFamily] = {
    family.model_type: family
    for family in (
        ModelFamily(
            RNNConfig,
            RNNModel,
            {
                "sequence_classification": RNNForSequenceClassification,
                "token_classification": RNNForTokenClassification,
            },
        ),
        ModelFamily(
            LSTMConfig,
            LSTMModel,
            {
                "sequence_classification": LSTMForSequenceClassification,
                "token_classification": LSTMForTokenClassification,
            },
        ),
        ModelFamily(
            GRUConfig,
            GRUModel,
            {
                "sequence_classification": GRUForSequenceClassification,
                "token_classification": GRUForTokenClassification,
            },
        ),
    )
}


def _register_with_auto_classes(family: ModelFamily) -> None:
    config = family.config_class
    AutoConfig.register(config.model_type, config, exist_ok=True)
    AutoModel.register(config, family.base_model, exist_ok=True)
    config.register_for_auto_class()
    family.base_model.register_for_auto_class("AutoModel")
    for task, head in family.heads.items():
        _register_head_class(config, task, head)


def _register_head_class(config: type[RecurrentConfig], task: str, head: type[PreTrainedModel]) -> None:
    auto_class = TASK_AUTO_CLASSES[task]
    auto_class.register(config, head, exist_ok=True)
    head.register_for_auto_class(auto_class.__name__)


def register_head(task: str, heads: dict[str, type[PreTrainedModel]], auto_class: type | None = None) -> None:
    """Adds a task head to model families and registers it with the task's transformers Auto class.

    Args:
        task (`str`): the task name, e.g. `"causal_lm"`.
        heads (`dict[str, type[PreTrainedModel]]`): model type (`"hf_lstm"`, ...) -> head class.
        auto_class (`type`, *optional*): the Auto class of a task not yet in `TASK_AUTO_CLASSES`
            (e.g. `AutoModelForCausalLM`); required then.

    Example:

    ```python
    >>> from transformers import AutoModelForCausalLM
    >>> register_head("causal_lm", {"hf_lstm": LSTMForCausalLM}, AutoModelForCausalLM)
    ```
    """
    if auto_class is not None:
        TASK_AUTO_CLASSES[task] = auto_class
    elif task not in TASK_AUTO_CLASSES:
        raise ValueError(f"task {task!r} is new; pass its transformers Auto class (auto_class=AutoModelFor...).")
    for model_type, head in heads.items():
        family = get_family(model_type)
        family.heads[task] = head
        _register_head_class(family.config_class, task, head)


def get_family(model_type: str) -> ModelFamily:
    """The family of an hf_rnn model type (`config.model_type`); a `ValueError` names the known ones."""
    if model_type not in MODEL_FAMILIES:
        raise ValueError(f"{model_type!r} is not an hf_rnn model type; hf_rnn has {', '.join(MODEL_FAMILIES)}.")
    return MODEL_FAMILIES[model_type]


def head_class(model_type: str, task: str = "sequence_classification") -> type[PreTrainedModel]:
    """The head class of a model type for a task, e.g. `head_class("hf_lstm")` is `LSTMForSequenceClassification`."""
    family = get_family(model_type)
    if task not in family.heads:
        raise ValueError(f"{model_type} has no {task!r} head; it has {', '.join(family.heads)}.")
    return family.heads[task]


def tasks() -> list[str]:
    """Every task some registered family has a head for."""
    return sorted({task for family in MODEL_FAMILIES.values() for task in family.heads})


for _family in MODEL_FAMILIES.values():
    _register_with_auto_classes(_family)


# --- the front door over configs/models/ ----------------------------------------------------------------------


def list_models(filter: str = "*", exclude_filters: str | list[str] = ()) -> list[str]:
    """Names of the model definitions in `configs/models/` matching fnmatch patterns, sorted.

    Args:
        filter (`str`, *optional*, defaults to `"*"`): a wildcard pattern, e.g. `"*gru*"`.
        exclude_filters (`str` or `list[str]`, *optional*): patterns of names to leave out, e.g. `"minilm_*"`.

    Example:

    ```python
    >>> list_models("bi*", exclude_filters="*_2layer")
    ['bigru', 'bilstm', 'birnn']
    ```
    """
    excluded = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    names = sorted(path.stem for path in MODELS_DIR.glob("*.yaml"))
    return [
        name
        for name in names
        if fnmatch.fnmatch(name, filter) and not any(fnmatch.fnmatch(name, pattern) for pattern in excluded)
    ]


def model_description(name: str) -> str:
    """The one-line `description:` of a model definition in `configs/models/` (for `hf-rnn list`)."""
    data = yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text(encoding="utf-8")) or {}
    return str(data.get("description", ""))


def create_model(
    model_name: str,
    num_labels: int | None = None,
    task: str | None = None,
    pretrained: bool = True,
    **kwargs,
) -> PreTrainedModel:
    """Builds a model from a definition in `configs/models/` (see [`list_models`]), like timm's `create_model`.

    The definition's fields are validated as a recipe's `model` section is (an unknown field is an error naming the
    closest one); keyword arguments that are `None` are dropped, so the definition's values stand.

    Args:
        model_name (`str`): a name from `list_models()`, e.g. `"bilstm"`.
        num_labels (`int`, *optional*): the number of classes (labels `LABEL_0`, ...); the config default (2) when
            not given.
        task (`str`, *optional*): a task head, e.g. `"token_classification"`; defaults to the definition's task
            (`"sequence_classification"`).
        pretrained (`bool`, *optional*, defaults to `True`): load the encoder weights a definition names in
            `frontend_pretrained` (e.g. `minilm_bigru`); `False` leaves the encoder randomly initialised.
        **kwargs: config fields to override (`hidden_size=32`, `vocab_size=30000`, `id2label={...}`, ...).

    Returns:
        `PreTrainedModel`: a randomly initialised model (but for a pretrained encoder), e.g. a
        `GRUForSequenceClassification`.

    Raises:
        `ValueError`: an unknown model name (with the closest one), field or task.

    Example:

    ```python
    >>> import hf_rnn
    >>> model = hf_rnn.create_model("bigru", num_labels=3, hidden_size=32)
    >>> model.config.hidden_size, model.config.num_labels
    (32, 3)
    ```
    """
    from .recipes import build_model_spec

    names = list_models()
    if model_name not in names:
        close = difflib.get_close_matches(model_name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown model {model_name!r}.{hint} Models: {', '.join(names)}.")
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    derived = {key: kwargs.pop(key) for key in ("vocab_size", "pad_token_id", "id2label", "label2id") if key in kwargs}
    if num_labels is not None:
        derived["num_labels"] = num_labels
    spec = build_model_spec({"base": model_name, **kwargs, **({"task": task} if task else {})})
    if spec.embedding_init is not None:
        raise ValueError(
            "embedding_init loads word vectors for a tokenizer's vocabulary; train with a recipe, or load them with "
            "hf_rnn.frontends.load_word_vectors(path, tokenizer, model.get_input_embeddings())."
        )
    model = head_class(spec.model_type, spec.task)(spec.build_config(**derived))
    if pretrained and spec.frontend_pretrained is not None:
        from .frontends import load_pretrained_frontend

        load_pretrained_frontend(model, spec.frontend_pretrained)
    return model


__all__ = [
    "ModelFamily",
    "MODEL_FAMILIES",
    "TASK_AUTO_CLASSES",
    "register_head",
    "get_family",
    "head_class",
    "tasks",
    "list_models",
    "model_description",
    "create_model",
]
