"""hf_rnn: simple-RNN, LSTM and GRU text classifiers, taggers and language models as native transformers models.

Importing the package registers the three model types (`hf_rnn`, `hf_lstm`, `hf_gru`) with the transformers Auto
classes, and marks the classes for Hub remote code so saved models also load where hf_rnn is not installed.

Without torch installed (a serving image with onnxruntime and tokenizers only), or with the environment variable
`HF_RNN_NO_TORCH=1` (a faster start where torch is installed), the package imports without torch, transformers and the
model classes: `hf_rnn.predict` on a folder written by `hf-rnn export` and `hf-rnn predict --backend onnx` work.
"""

import importlib.util
import os

from .inference import iter_predict, predict

__version__ = "0.1.0"

if os.environ.get("HF_RNN_NO_TORCH") == "1" or importlib.util.find_spec("torch") is None:
    __all__ = ["predict", "iter_predict"]
else:
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

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
    from .modeling_rnn_lm import GRUForCausalLM, LSTMForCausalLM, RecurrentForCausalLM, RNNForCausalLM
    from .summary import summary

    # model type -> (config, base model, sequence classifier, token classifier)
    MODEL_CLASSES = {
        RNNConfig.model_type: (RNNConfig, RNNModel, RNNForSequenceClassification, RNNForTokenClassification),
        LSTMConfig.model_type: (LSTMConfig, LSTMModel, LSTMForSequenceClassification, LSTMForTokenClassification),
        GRUConfig.model_type: (GRUConfig, GRUModel, GRUForSequenceClassification, GRUForTokenClassification),
    }

    for _config, _base, _sequence, _token in MODEL_CLASSES.values():
        AutoConfig.register(_config.model_type, _config, exist_ok=True)
        AutoModel.register(_config, _base, exist_ok=True)
        AutoModelForSequenceClassification.register(_config, _sequence, exist_ok=True)
        AutoModelForTokenClassification.register(_config, _token, exist_ok=True)
        _config.register_for_auto_class()
        _base.register_for_auto_class("AutoModel")
        _sequence.register_for_auto_class("AutoModelForSequenceClassification")
        _token.register_for_auto_class("AutoModelForTokenClassification")

    # model type -> causal language model (hf_rnn.modeling_rnn_lm)
    CAUSAL_LM_CLASSES = {
        RNNConfig.model_type: RNNForCausalLM,
        LSTMConfig.model_type: LSTMForCausalLM,
        GRUConfig.model_type: GRUForCausalLM,
    }
    for _model_type, _causal_lm in CAUSAL_LM_CLASSES.items():
        AutoModelForCausalLM.register(_causal_lm.config_class, _causal_lm, exist_ok=True)
        _causal_lm.register_for_auto_class("AutoModelForCausalLM")

    __all__ = [
        "MODEL_CLASSES",
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
        "CAUSAL_LM_CLASSES",
        "RecurrentForCausalLM",
        "RNNForCausalLM",
        "LSTMForCausalLM",
        "GRUForCausalLM",
        "summary",
        "predict",
        "iter_predict",
    ]
