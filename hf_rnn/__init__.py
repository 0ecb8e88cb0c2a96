"""hf_rnn: simple-RNN, LSTM and GRU text classifiers, taggers and language models as native transformers models.

Importing the package registers the three model types (`hf_rnn`, `hf_lstm`, `hf_gru`) with the transformers Auto
classes (see `hf_rnn.registry`), and marks the classes for Hub remote code so saved models also load where hf_rnn is
not installed. `create_model("bilstm", num_labels=3)` builds a model from a definition in `configs/models/`, and
`list_models("*gru*")` lists them.

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
    from transformers import AutoModelForCausalLM

    from .configuration_rnn import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
    from .modeling_rnn import (
        GRUForSequenceClassification,
        GRUForTokenClassification,
        GRUModel,
        LSTMForSequenceClassification,
        LSTMForTokenClassification,
        LSTMModel,
        RecurrentLayer,
        RecurrentModel,
        RecurrentPreTrainedModel,
        RNNForSequenceClassification,
        RNNForTokenClassification,
        RNNModel,
    )
    from .modeling_rnn_lm import GRUForCausalLM, LSTMForCausalLM, RecurrentForCausalLM, RNNForCausalLM
    from .registry import MODEL_FAMILIES, ModelFamily, create_model, list_models, register_head
    from .sequence_kernels import run_sequence_kernels
    from .summary import summary

    register_head(
        "causal_lm",
        {
            RNNConfig.model_type: RNNForCausalLM,
            LSTMConfig.model_type: LSTMForCausalLM,
            GRUConfig.model_type: GRUForCausalLM,
        },
        AutoModelForCausalLM,
    )
    # recurrent layers train through hf_rnn's sequence kernels on CPU (hf_rnn/sequence_kernels.py)
    RecurrentLayer.sequence_kernel = run_sequence_kernels
    # model type -> causal language model (hf_rnn.modeling_rnn_lm), as the registry holds it
    CAUSAL_LM_CLASSES = {model_type: family.heads["causal_lm"] for model_type, family in MODEL_FAMILIES.items()}

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
        "CAUSAL_LM_CLASSES",
        "RecurrentForCausalLM",
        "RNNForCausalLM",
        "LSTMForCausalLM",
        "GRUForCausalLM",
        "summary",
        "predict",
        "iter_predict",
    ]
