"""Reading an hf_rnn model directory: one loader for config, weights, tokenizer and recipe, with one set of messages.

`hf-rnn eval`, `predict`, `summary`, `card` and `push` all read model directories through this module, so a broken
directory gets the same one-line error, naming the file and what to do, whichever command met it:

    read_config(model_dir)       config.json: present, valid JSON, an hf_rnn model type, valid values
    check_weights(model_dir, c)  the safetensors cover the model exactly: no missing, unused or misshapen tensor
    load_tokenizer(model_dir, c) tokenizer.json: present, readable, no more ids than the model's embedding
    load_model_dir(model_dir)    all of the above, then the model in eval mode and its tokenizer
    read_data_spec(model_dir)    the `data` section of recipe.yaml (what `hf-rnn eval` evaluates on by default)
    read_recipe(model_dir)       the whole recipe.yaml (a language model's evaluation needs its block size)

Example:

```python
>>> from hf_rnn.model_dir import load_model_dir
>>> model, tokenizer = load_model_dir("hf_rnn_outputs/quickstart")
```
"""

import json
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase
from transformers.core_model_loading import revert_weight_conversion

from .configuration_rnn import RecurrentConfig
from .data import DataSpec
from .recipes import Recipe, load_data_spec, load_recipe, strict_error_message
from .registry import MODEL_FAMILIES, head_class
from .utils import one_line

__all__ = [
    "check_weights",
    "is_language_model",
    "load_model_dir",
    "load_tokenizer",
    "read_config",
    "read_data_spec",
    "read_recipe",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# tensors named in a message before "and N more"
_NAMED_TENSORS = 3


def read_config(model_dir: str | Path) -> RecurrentConfig:
    """The validated config of an hf_rnn model directory.

    Raises:
        `FileNotFoundError`: no such folder, or no config.json in it.
        `ValueError`: config.json is not JSON, is not an hf_rnn model's (naming hf_rnn's model types), or holds an
            invalid value.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir} is not a model directory: no such folder.")
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory: it has no config.json.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); restore it from the Hub or a backup.") from None
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if model_type not in MODEL_FAMILIES:
        # before AutoConfig, whose advice for an unknown type ("upgrade transformers") does not fit
        raise ValueError(
            f"{path}: model_type {model_type!r} is not an hf_rnn model type ({', '.join(MODEL_FAMILIES)}); point at a "
            "folder written by `hf-rnn train` or an hf_rnn model's save_pretrained."
        )
    try:
        return AutoConfig.from_pretrained(model_dir)
    except (StrictDataclassError, ValueError, TypeError) as error:
        raise ValueError(f"{path} holds an invalid value: {strict_error_message(error)}") from None


def is_language_model(config: RecurrentConfig) -> bool:
    """Whether config.json describes a language model (`architectures` names a `*ForCausalLM`)."""
    return any(name.endswith("ForCausalLM") for name in config.architectures or [])


def model_class(config: RecurrentConfig) -> type:
    """The class a model directory holds: its language model when config.json says so, else the classifier."""
    if is_language_model(config):
        return head_class(config.model_type, "causal_lm")
    return head_class(config.model_type)


def _named(keys: list[str]) -> str:
    shown = ", ".join(keys[:_NAMED_TENSORS])
    return shown + (f" and {len(keys) - _NAMED_TENSORS} more" if len(keys) > _NAMED_TENSORS else "")


def check_weights(model_dir: str | Path, config: RecurrentConfig) -> None:
    """Checks that the safetensors files hold exactly the tensors the config's model has, in its shapes.

    A model whose weights do not cover it would load with random parameters and predict nonsense without an error;
    weights the model does not use mean the config describes another model.

    Raises:
        `ValueError`: naming an unreadable file, the missing or unused tensors, or the first tensor whose shape
            differs.
    """
    model_dir = Path(model_dir)
    with torch.device("meta"):
        model = model_class(config)(config)
    # as saved: transformers reverts the model's registered renamings (see modeling_rnn_embeddings.py) when saving
    expected = {key: tuple(value.shape) for key, value in revert_weight_conversion(model, model.state_dict()).items()}
    saved = {}
    files = sorted(model_dir.glob("*.safetensors"))
    for path in files:
        try:
            with safe_open(path, framework="pt") as weights:
                saved.update({key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()})
        except SafetensorError as error:
            raise ValueError(f"{path} is not a readable safetensors file ({error}); re-download or re-save it.")
    where = files[0].name if len(files) == 1 else f"the safetensors files of {model_dir}"
    missing = sorted(set(expected) - set(saved))
    if missing:
        raise ValueError(
            f"{model_dir}: {where} lacks {len(missing)} of the model's {len(expected)} tensors ({_named(missing)}), "
            "which would start random; the config and the weights do not belong together."
        )
    unused = sorted(set(saved) - set(expected))
    if unused:
        raise ValueError(
            f"{model_dir}: {where} holds {len(unused)} tensors the model of config.json does not have "
            f"({_named(unused)}); the config and the weights do not belong together."
        )
    for key, shape in saved.items():
        if expected[key] != shape:
            raise ValueError(
                f"{where}: {key} has shape {list(shape)} but config.json describes {list(expected[key])}; "
                "the config and the weights do not belong together."
            )


def load_tokenizer(model_dir: str | Path, config: RecurrentConfig) -> PreTrainedTokenizerBase:
    """The model directory's tokenizer, checked to give no id beyond the model's embedding table.

    Raises:
        `FileNotFoundError`: no tokenizer.json.
        `ValueError`: tokenizer.json does not load, or it has more ids than the model's `vocab_size`.
    """
    model_dir = Path(model_dir)
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{model_dir} has no tokenizer.json; copy it from the training output or the Hub repository of the model."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except Exception as error:  # a corrupt file surfaces as JSON, tokenizers or sentencepiece errors
        raise ValueError(
            f"{path} does not load ({type(error).__name__}: {one_line(error, first_only=True)}); restore it from the "
            "training output or the Hub repository of the model."
        ) from None
    embedding_rows = config.vocab_size
    if config.frontend_config is not None:
        embedding_rows = config.frontend_config.vocab_size
    if len(tokenizer) > embedding_rows:
        raise ValueError(
            f"{path} has {len(tokenizer):,} token ids but the model's embedding only {embedding_rows:,} rows; the "
            "tokenizer belongs to another model: restore the tokenizer it was trained with."
        )
    return tokenizer


def load_model_dir(model_dir: str | Path, allow_pickle: bool = False):
    """Loads the model (in eval mode) and tokenizer of an hf_rnn model directory, with a one-line error naming what
    is wrong. Reads only: the directory may be read-only.

    Weights load from safetensors only: a pickled `pytorch_model.bin` can run code when unpickled, so it is refused
    unless `allow_pickle=True`, and even then it is read with `torch.load(weights_only=True)`.

    Returns:
        `tuple[PreTrainedModel, PreTrainedTokenizerBase]`
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    has_safetensors = any(model_dir.glob("*.safetensors"))
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not has_safetensors:
        if not pickles:
            raise FileNotFoundError(f"{model_dir} has no weights (model.safetensors is missing).")
        if not allow_pickle:
            raise ValueError(
                f"{model_dir} holds only pickled weights ({', '.join(pickles)}), which can run code when loaded; "
                "convert them to safetensors, or pass --allow-pickle (allow_pickle=True) if you trust the source."
            )
    else:
        check_weights(model_dir, config)
    tokenizer = load_tokenizer(model_dir, config)
    try:
        model, info = model_class(config).from_pretrained(
            model_dir, config=config, use_safetensors=has_safetensors, output_loading_info=True
        )
    except (OSError, RuntimeError, SafetensorError) as error:
        # truncated or corrupt files, and weights whose shapes do not match the config
        raise ValueError(f"{model_dir}: the weights do not load: {one_line(error, first_only=True)}") from None
    if info["missing_keys"] or info["mismatched_keys"]:
        # pickled weights are not checked beforehand: refuse what transformers would start at random
        missing = sorted(info["missing_keys"]) + sorted(str(key[0]) for key in info["mismatched_keys"])
        raise ValueError(
            f"{model_dir}: the weights lack or misshape {len(missing)} of the model's tensors ({_named(missing)}); "
            "the config and the weights do not belong together."
        )
    return model.eval(), tokenizer


def read_data_spec(model_dir: str | Path) -> DataSpec:
    """The `data` section of the model directory's recipe.yaml: the data the model was trained and tested on."""
    path = Path(model_dir) / "recipe.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no recipe.yaml; say which data to evaluate on with --data.")
    return load_data_spec(path)


def read_recipe(model_dir: str | Path) -> Recipe:
    """The model directory's recipe.yaml (the resolved recipe `hf-rnn train` wrote), validated."""
    path = Path(model_dir) / "recipe.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no recipe.yaml; copy it from the directory `hf-rnn train` wrote.")
    return load_recipe(path)
