"""hf_rnn: simple-RNN, LSTM and GRU text classifiers and taggers as native Hugging Face transformers models.

Importing the package registers the three model types (`hf_rnn`, `hf_lstm`, `hf_gru`) with the transformers Auto
classes (see `hf_rnn.registry`), and marks the classes for Hub remote code so saved models also load where hf_rnn is
not installed. `create_model("bilstm", num_labels=3)` builds a model from a definition in `configs/models/`, and
`list_models("*gru*")` lists them.
"""

from .configuration_rnn import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .modeling_rnn import (
    GRUForSequenceClassification,
    GRUForTokenClassification,
    GRUModel,
    LSTMForSequenceClassification,
    LSTMForTokenClassification,
    LSTMModel,
    RecurrentModel,
    RecurrentPreTrainedModel,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
)
from .registry import MODEL_FAMILIES, ModelFamily, create_model, list_models, register_head
from .summary import summary

__version__ = "0.1.0"

__all__ = [
    "MODEL_FAMILIES",
    "ModelFamily",
    "create_model",
    "list_models",
    "register_head",
    "RecurrentConfig",
    "RNNConfig",
    "LSTMConfig",
    "GRUConfig",
    "RecurrentPreTrainedModel",
    "RecurrentModel",
    "RNNModel",
    "LSTMModel",
    "GRUModel",
    "RNNForSequenceClassification",
    "LSTMForSequenceClassification",
    "GRUForSequenceClassification",
    "RNNForTokenClassification",
    "LSTMForTokenClassification",
    "GRUForTokenClassification",
    "summary",
]
