"""Configurations of the hf_rnn recurrent text models (simple RNN, LSTM, GRU).

A config holds the architecture and the labels only; training hyperparameters live in the recipe and in
`TrainingArguments`. There is deliberately no `from __future__ import annotations` here: the strict dataclass checks of
transformers v5 read the real annotations.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

MERGE_MODES = ("concat", "sum", "mul", "ave")
POOLINGS = ("last", "mean", "max", "first_last", "attention")
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "linear")
FRONTEND_OUTPUTS = ("sequence", "pooled", "layer_mix")
FREEZE_MODES = ("all", "embeddings", "none")


class ConfigValueError(ValueError):
    """A config value out of range; `field` names it, so a recipe error can point at its line."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# Strict `float` fields reject a plain int such as `dropout: 0` from YAML or JSON,
# so these accept an int and store a float.
_FLOAT_FIELDS = ("embedding_dropout", "dropout", "classifier_dropout")


@strict
class RecurrentConfig(PreTrainedConfig):
    r"""
    Configuration shared by [`RNNConfig`], [`LSTMConfig`] and [`GRUConfig`]. Use one of those; this base class has
    no model of its own.

    Args:
        vocab_size (`int`, *optional*, defaults to 20000):
            Number of rows of the token embedding (the tokenizer's vocabulary size). Unused with a frontend.
        embedding_dim (`int`, *optional*, defaults to 128):
            Width of the token embedding (Keras `Embedding(output_dim=...)`). With a frontend it is set to the
            encoder's hidden size.
        hidden_size (`int`, *optional*, defaults to 128):
            Number of recurrent units in each direction of each layer (Keras `LSTM(units)`).
        num_layers (`int`, *optional*, defaults to 1):
            Number of stacked recurrent layers (Keras `return_sequences=True` stacking).
        bidirectional (`bool`, *optional*, defaults to `False`):
            Run a second, backward layer over each sequence (Keras `Bidirectional`).
        merge_mode (`str`, *optional*, defaults to `"concat"`):
            How the two directions are combined: `"concat"`, `"sum"`, `"mul"` or `"ave"`, as in Keras.
        pooling (`str`, *optional*, defaults to `"last"`):
            How a sequence becomes one vector for classification. `"last"`: the final state of each direction (the
            forward state at the last real token, the backward state at the first, as Keras'
            `return_sequences=False`);
            `"mean"` / `"max"`: over real tokens; `"first_last"`: the outputs at the first and last real token,
            concatenated; `"attention"`: a learned softmax-weighted sum over real tokens. All ignore padding.
        embedding_dropout (`float`, *optional*, defaults to 0.0):
            Dropout applied to the embeddings.
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout between stacked recurrent layers.
        classifier_hidden_sizes (`list[int]`, *optional*):
            Widths of the dense hidden layers of the classification head (the tutorials' `Dense(64, "relu")`).
        classifier_activation (`str`, *optional*, defaults to `"relu"`):
            Activation of those hidden layers: `"relu"`, `"tanh"`, `"gelu"`, `"sigmoid"` or `"linear"`.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout before each dense layer of the head.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token; without an `attention_mask`, positions holding it are masked (Keras `mask_zero`).
        initializer (`str`, *optional*, defaults to `"keras"`):
            `"keras"` uses Keras' defaults: glorot-uniform input weights, orthogonal recurrent weights, zero biases
            (unit forget-gate bias for LSTM) and uniform(-0.05, 0.05) embeddings; `"pytorch"` keeps PyTorch's default
            initialisation. Keras' trained better on every embedded dataset and cell (`scripts/defaults_study.py`,
            RESULTS.md): the simple RNN on IMDB reached 82.6% test accuracy against 64.7% with PyTorch's.
        sequence_packing (`str`, *optional*, defaults to `"auto"`):
            `"auto"` packs sequences (`pack_padded_sequence`) on CUDA, where cuDNN gains from it, and runs padded on
            CPU, where packing is about 2x slower; `"always"` / `"never"` force one path. Both give the same outputs.
        frontend (`str`, *optional*, defaults to `"none"`):
            `"none"` for a trainable embedding table, `"bert"` for a transformer encoder (any `AutoModel` encoder
            described by `frontend_config`) whose outputs feed the recurrent layers.
        frontend_config (`dict` or `PreTrainedConfig`, *optional*):
            The encoder's own config (e.g. a `BertConfig`); required when `frontend="bert"`.
        frontend_layers (`int`, *optional*):
            Keep only the first N encoder layers (the tutorials' 2-layer BERT); several times faster.
        frontend_output (`str`, *optional*, defaults to `"sequence"`):
            `"sequence"`: the encoder's token outputs; `"pooled"`: its pooled output as a one-step sequence;
            `"layer_mix"`: a learned softmax-weighted sum of all its hidden layers.
        freeze_frontend (`str`, *optional*, defaults to `"all"`):
            Which encoder weights stay fixed during training: `"all"`, `"embeddings"` or `"none"`.
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Language models (`*ForCausalLM`) only: the output projection shares the embedding matrix (after a
            projection from `hidden_size` to `embedding_dim` when they differ). Classifiers ignore it.
        use_cache (`bool`, *optional*, defaults to `True`):
            Language models only: return the recurrent state as the cache, so generation costs one step per token.
        bos_token_id (`int`, *optional*):
            Language models only: id of the beginning-of-text token (set from the tokenizer by the recipes).
        eos_token_id (`int`, *optional*):
            Language models only: id of the end-of-text token; generation stops there.

    Example:

    ```python
    >>> from hf_rnn import LSTMConfig, LSTMForSequenceClassification

    >>> config = LSTMConfig(vocab_size=20000, hidden_size=64, bidirectional=True, id2label={0: "neg", 1: "pos"})
    >>> model = LSTMForSequenceClassification(config)
    ```"""

    model_type = "hf_recurrent"
    cell_type = ""
    sub_configs_defaults = {"frontend_config": SubConfigSpec(AutoConfig, model_type="bert", optional=True)}

    vocab_size: int = 20000
    embedding_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat"
    pooling: Literal["last", "mean", "max", "first_last", "attention"] = "last"
    embedding_dropout: float | int = 0.0
    dropout: float | int = 0.0
    classifier_hidden_sizes: list[int] | None = None
    classifier_activation: Literal["relu", "tanh", "gelu", "sigmoid", "linear"] = "relu"
    classifier_dropout: float | int = 0.0
    pad_token_id: int = 0
    initializer: Literal["pytorch", "keras"] = "keras"
    sequence_packing: Literal["auto", "always", "never"] = "auto"
    frontend: Literal["none", "bert"] = "none"
    frontend_config: dict | PreTrainedConfig | None = None
    frontend_layers: int | None = None
    frontend_output: Literal["sequence", "pooled", "layer_mix"] = "sequence"
    freeze_frontend: Literal["all", "embeddings", "none"] = "all"
    tie_word_embeddings: bool = True
    use_cache: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self, **kwargs):
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, float(value))
        if self.classifier_hidden_sizes is None:
            self.classifier_hidden_sizes = []
        super().__post_init__(**kwargs)
        if self.id2label is not None and self.label2id is None:
            self.label2id = {label: index for index, label in self.id2label.items()}
        if self.frontend_config is not None:
            if self.frontend_layers is not None:
                # the encoder is built with only its first N layers, so pretrained loading drops the rest
                self.frontend_config.num_hidden_layers = min(
                    self.frontend_layers, self.frontend_config.num_hidden_layers
                )
            self.embedding_dim = self.frontend_config.hidden_size

    @property
    def output_size(self) -> int:
        """Width of each token's output after merging the two directions."""
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.hidden_size
        return self.hidden_size

    @property
    def pooled_size(self) -> int:
        """Width of the pooled sequence vector fed to the classification head."""
        return 2 * self.output_size if self.pooling == "first_last" else self.output_size

    def validate_architecture(self):
        """Cross-field checks; each message names the field, the bad value and what is allowed."""
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigValueError(name, f"{name} must be a positive integer, got {value}.")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigValueError(name, f"{name} must be in [0, 1), got {value}.")
        for size in self.classifier_hidden_sizes:
            if size < 1:
                raise ConfigValueError(
                    "classifier_hidden_sizes",
                    f"classifier_hidden_sizes must hold positive integers, got {self.classifier_hidden_sizes}.",
                )
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigValueError(
                "pad_token_id", f"pad_token_id must be in [0, vocab_size={self.vocab_size}), got {self.pad_token_id}."
            )
        if self.frontend == "bert" and self.frontend_config is None:
            raise ConfigValueError(
                "frontend", "frontend='bert' needs frontend_config (the encoder's config, e.g. a BertConfig dict)."
            )
        if self.frontend == "none" and self.frontend_config is not None:
            raise ConfigValueError(
                "frontend_config",
                "frontend_config is set but frontend='none'; set frontend='bert' or drop frontend_config.",
            )
        if self.frontend_layers is not None and self.frontend_layers < 1:
            raise ConfigValueError(
                "frontend_layers", f"frontend_layers must be a positive integer or null, got {self.frontend_layers}."
            )


@strict
class RNNConfig(RecurrentConfig):
    r"""
    Configuration of a simple (Elman) RNN model, the analogue of Keras `SimpleRNN`. Takes every argument of
    [`RecurrentConfig`], plus:

    Args:
        nonlinearity (`str`, *optional*, defaults to `"tanh"`):
            Activation of the recurrent cell: `"tanh"` or `"relu"`.
    """

    model_type = "hf_rnn"
    cell_type = "rnn"

    nonlinearity: Literal["tanh", "relu"] = "tanh"


@strict
class LSTMConfig(RecurrentConfig):
    r"""Configuration of an LSTM model, the analogue of Keras `LSTM`. Takes every argument of [`RecurrentConfig`]."""

    model_type = "hf_lstm"
    cell_type = "lstm"


@strict
class GRUConfig(RecurrentConfig):
    r"""Configuration of a GRU model, the analogue of Keras `GRU`. Takes every argument of [`RecurrentConfig`]."""

    model_type = "hf_gru"
    cell_type = "gru"


__all__ = ["ConfigValueError", "RecurrentConfig", "RNNConfig", "LSTMConfig", "GRUConfig"]
