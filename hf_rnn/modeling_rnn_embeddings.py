"""The embeddings of hf_rnn models: what the recurrent layers read, as `BertEmbeddings` is for BERT.

`RecurrentEmbeddings` turns token ids into vectors with either a trainable table (Keras' `Embedding`) or a transformer
encoder frontend (`frontend="bert"`), read as its last hidden state, its pooled output or a learned softmax mix of all
its layers, then applies embedding dropout. Vectors given as `inputs_embeds` (a frozen encoder's cached outputs, see
`hf_rnn.frontends.add_frontend_features`) take the place of the table or the encoder.

Checkpoints keep the names of hf_rnn's first release (`embeddings.weight`, `frontend.*`, `layer_weights`): the
renamings below are registered with transformers, which applies them when loading and reverts them when saving, so
files written before and after this module existed load the same way, with or without hf_rnn installed. This file
imports only the configuration, relatively, so it also works as Hub remote code.
"""

import inspect

import torch
from torch import nn
from transformers import MODEL_MAPPING, AutoModel, PreTrainedModel
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming

from .configuration_rnn import RecurrentConfig


def build_frontend(config: RecurrentConfig) -> PreTrainedModel:
    """Builds the transformer encoder of a `frontend="bert"` model from its config alone (no download)."""
    encoder_class = MODEL_MAPPING[type(config.frontend_config)]
    kwargs = {}
    if "add_pooling_layer" in inspect.signature(encoder_class.__init__).parameters:
        # an unused pooler has parameters without gradients, which breaks DistributedDataParallel
        kwargs["add_pooling_layer"] = config.frontend_output == "pooled"
    elif config.frontend_output == "pooled":
        raise ValueError(
            f"frontend_output='pooled' needs an encoder with a pooler; {encoder_class.__name__} has none. "
            "Use frontend_output='sequence' or 'layer_mix'."
        )
    return AutoModel.from_config(config.frontend_config, **kwargs)


class RecurrentEmbeddings(nn.Module):
    """Token vectors for the recurrent layers: an embedding table, or a transformer encoder frontend.

    Returns `(vectors, attention_mask)`: vectors of shape `(batch, time, config.embedding_dim)` and the mask that
    goes with them, which is the input mask cut to one step when a pooled encoder output stands for each text. Without
    a mask (the language models, which track padding themselves) given vectors are taken as they are; an encoder
    frontend always gets its mask from `RecurrentModel`.
    """

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.frontend_output = config.frontend_output if config.frontend == "bert" else None
        if config.frontend == "bert":
            self.frontend = build_frontend(config)
            self.token_embeddings = None
            mix_size = config.frontend_config.num_hidden_layers + 1
            self.layer_weights = nn.Parameter(torch.zeros(mix_size)) if config.frontend_output == "layer_mix" else None
        else:
            self.frontend = None
            self.token_embeddings = nn.Embedding(
                config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id
            )
            self.layer_weights = None
        self.dropout = nn.Dropout(config.embedding_dropout)

    def get_input_embeddings(self) -> nn.Module:
        """The table of token vectors: the model's own, or the encoder's word embeddings."""
        return self.token_embeddings if self.frontend is None else self.frontend.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        if self.frontend is None:
            self.token_embeddings = value
        else:
            self.frontend.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        vectors, attention_mask = self._vectors(input_ids, attention_mask, token_type_ids, inputs_embeds)
        return self.dropout(vectors), attention_mask

    def _vectors(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.frontend_output == "pooled"
        if inputs_embeds is not None:
            # given vectors, e.g. a frozen encoder's outputs cached by `hf_rnn.frontends.add_frontend_features`
            # (float16 on disk); a pooled encoder output is one step per text
            if attention_mask is None:
                return inputs_embeds.to(next(self.parameters()).dtype), attention_mask
            if pooled and inputs_embeds.shape[1] == 1:
                attention_mask = attention_mask[:, :1]
            if inputs_embeds.shape[:2] != attention_mask.shape:
                raise ValueError(
                    f"inputs_embeds of shape {tuple(inputs_embeds.shape)} do not match the attention_mask of shape "
                    f"{tuple(attention_mask.shape)}; pad both to the same length (hf_rnn.data.PaddingCollator does)."
                )
            return inputs_embeds.to(next(self.parameters()).dtype), attention_mask
        if self.frontend is None:
            return self.token_embeddings(input_ids), attention_mask
        output_mix = self.layer_weights is not None
        encoded = self.frontend(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=output_mix,
        )
        if pooled:
            # the pooled vector is a one-step sequence for the recurrent layers
            return encoded.pooler_output.unsqueeze(1), attention_mask[:, :1]
        if output_mix:
            weights = self.layer_weights.softmax(0)
            return sum(w * h for w, h in zip(weights, encoded.hidden_states)), attention_mask
        return encoded.last_hidden_state, attention_mask


# checkpoint names of hf_rnn's first release (under the bare model's prefix) -> this module's parameters; a name
# ending in "." renames every key under it
CHECKPOINT_NAMES = {
    "embeddings.weight": "embeddings.token_embeddings.weight",
    "frontend.": "embeddings.frontend.",
    "layer_weights": "embeddings.layer_weights",
}


def register_checkpoint_names(model_type: str) -> None:
    """Registers [`CHECKPOINT_NAMES`] with transformers for a model type: `from_pretrained` applies them, and
    `save_pretrained` reverts them, so files keep the first names."""
    # transformers searches keys with these patterns: `(?<!_)` keeps an encoder frontend's own
    # `word_embeddings.weight` out of the first
    patterns = {"embeddings.weight": r"(?<!_)embeddings.weight"}
    renamings = [WeightRenaming(patterns.get(old, old), new) for old, new in CHECKPOINT_NAMES.items()]
    register_checkpoint_conversion_mapping(model_type, renamings, overwrite=True)


def rename_checkpoint_keys(state_dict: dict, prefix: str) -> None:
    """Renames, in place, first-release keys under `prefix` (see [`CHECKPOINT_NAMES`]), for `load_state_dict` paths
    that bypass `from_pretrained`, such as the Trainer resuming from a checkpoint."""
    for key in [key for key in state_dict if key.startswith(prefix)]:
        name = key[len(prefix) :]
        for old, new in CHECKPOINT_NAMES.items():
            if name == old or (old.endswith(".") and name.startswith(old)):
                state_dict[prefix + new + name[len(old) :]] = state_dict.pop(key)
                break
