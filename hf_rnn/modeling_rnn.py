"""PyTorch simple-RNN, LSTM and GRU text models for transformers.

One implementation serves the three cell types: `RecurrentModel` embeds tokens (or runs a transformer encoder
frontend), runs stacked, optionally bidirectional recurrent layers over the real tokens, and pools. The task heads
add a small dense classifier. This file imports its configuration only relatively, so it also works as Hub remote code.

Padding is exact without packing: right-padded positions come after every real token, so the forward direction's
outputs at real positions do not depend on them, and the backward direction runs over each sequence reversed within its
own length. On CPU that is about 2x faster than `pack_padded_sequence`, which leaves the fused oneDNN kernel (see
`hf_rnn/benchmark.py`); on CUDA, packing lets cuDNN skip the padding, so it is used there.
"""

import math
from typing import TypedDict

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.processing_utils import Unpack
from transformers.utils.generic import can_return_tuple

from .configuration_rnn import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .modeling_rnn_embeddings import RecurrentEmbeddings, register_checkpoint_names, rename_checkpoint_keys

# checkpoints keep their first names (`embeddings.weight`, `frontend.*`): see modeling_rnn_embeddings.py
for _config_class in (RNNConfig, LSTMConfig, GRUConfig):
    register_checkpoint_names(_config_class.model_type)

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentKwargs(TypedDict, total=False):
    """Keyword arguments the hf_rnn forwards take beyond their named ones. Each is used or refused, never dropped;
    any other keyword is a `TypeError`.

    Attributes:
        output_attentions (`bool`, *optional*):
            Generic callers ask for attention weights; recurrent models compute none, so `False` / `None` are accepted
            and `True` is an error.
    """

    output_attentions: bool | None


def check_forward_kwargs(kwargs: dict) -> None:
    """Refuses what a forward cannot honour (see [`RecurrentKwargs`])."""
    unknown = sorted(set(kwargs) - set(RecurrentKwargs.__annotations__))
    if unknown:
        raise TypeError(
            f"forward() got unexpected keyword arguments {', '.join(map(repr, unknown))}; hf_rnn models take the "
            "arguments their forward names (input_ids or inputs_embeds, attention_mask, labels, ...) and return_dict."
        )
    if kwargs.get("output_attentions"):
        raise ValueError("output_attentions=True: recurrent models compute no attention weights; leave it unset.")


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


class _RowPermutation(torch.autograd.Function):
    """Selects rows of a `(rows, features)` tensor by a permutation that is its own inverse.

    Then the gradient is the same selection applied to the incoming gradient: one contiguous row copy, where autograd's
    generic backward of `gather` or `index_select` zero-fills and scatter-adds (several times slower on CPU, about 5%
    of a bidirectional training step; see `hf_rnn/benchmark.py`). The results are identical: each row receives
    exactly one gradient row.
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        return rows.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        return grad.index_select(0, index), None


def reverse_padded(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverses each sequence of a right-padded batch within its own length; padding stays in place.

    Args:
        hidden (`torch.Tensor` of shape `(batch, time, features)`): the batch.
        lengths (`torch.LongTensor` of shape `(batch,)`): the number of real positions of each sequence.
    """
    batch, time, features = hidden.shape
    positions = torch.arange(time, device=hidden.device).expand(batch, time)
    index = lengths.unsqueeze(1) - 1 - positions
    # padding positions map to themselves, so applying the function twice is the identity
    index = torch.where(index >= 0, index, positions)
    # as a permutation of the flattened (batch * time) rows, which is its own inverse
    rows = index + torch.arange(batch, device=hidden.device).unsqueeze(1) * time
    return _RowPermutation.apply(hidden.reshape(batch * time, features), rows.reshape(-1)).view(batch, time, features)


def merge_directions(forward_states: torch.Tensor, backward_states: torch.Tensor, mode: str) -> torch.Tensor:
    """Combines the two directions as Keras' `Bidirectional(merge_mode=...)` does."""
    if mode == "concat":
        return torch.cat([forward_states, backward_states], dim=-1)
    if mode == "sum":
        return forward_states + backward_states
    if mode == "mul":
        return forward_states * backward_states
    return (forward_states + backward_states) / 2


class RecurrentLayer(nn.Module):
    """One recurrent layer: a forward cell and, if bidirectional, a backward cell over each reversed sequence."""

    # `(cells, inputs, lengths) -> outputs or None`, installed by hf_rnn (`hf_rnn.sequence_kernels`: training on CPU,
    # the directions at once); as Hub remote code, without hf_rnn, the layers run PyTorch's modules (same function)
    sequence_kernel = None

    def __init__(self, config: RecurrentConfig, input_size: int):
        super().__init__()
        cell_kwargs = {"input_size": input_size, "hidden_size": config.hidden_size, "batch_first": True}
        if config.cell_type == "rnn":
            cell_kwargs["nonlinearity"] = config.nonlinearity
        cell = _CELLS[config.cell_type]
        self.forward_cell = cell(**cell_kwargs)
        self.backward_cell = cell(**cell_kwargs) if config.bidirectional else None
        self.merge_mode = config.merge_mode
        self.sequence_packing = config.sequence_packing

    def _run(self, cells: list[nn.RNNBase], inputs: list[torch.Tensor], lengths: torch.Tensor) -> list[torch.Tensor]:
        pack = self.sequence_packing == "always" or (self.sequence_packing == "auto" and inputs[0].is_cuda)
        kernel = RecurrentLayer.sequence_kernel
        outputs = kernel(cells, inputs, lengths) if kernel is not None and not pack else None
        if outputs is not None:
            return outputs
        if not pack:
            return [cell(hidden)[0] for cell, hidden in zip(cells, inputs)]
        total = inputs[0].shape[1]
        packed = [
            pack_padded_sequence(hidden, lengths.cpu(), batch_first=True, enforce_sorted=False) for hidden in inputs
        ]
        return [
            pad_packed_sequence(cell(p)[0], batch_first=True, total_length=total)[0] for cell, p in zip(cells, packed)
        ]

    def forward(
        self, hidden: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Returns the merged outputs `(batch, time, output_size)` and each direction's outputs."""
        if self.backward_cell is None:
            (forward_states,) = self._run([self.forward_cell], [hidden], lengths)
            return forward_states, forward_states, None
        cells, inputs = [self.forward_cell, self.backward_cell], [hidden, reverse_padded(hidden, lengths)]
        forward_states, backward_states = self._run(cells, inputs, lengths)
        backward_states = reverse_padded(backward_states, lengths)
        return merge_directions(forward_states, backward_states, self.merge_mode), forward_states, backward_states


class RecurrentPooler(nn.Module):
    """Turns the last layer's token outputs into one vector per sequence, looking only at real tokens."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.pooling = config.pooling
        self.merge_mode = config.merge_mode
        self.attention = nn.Linear(config.output_size, 1) if config.pooling == "attention" else None

    def forward(
        self,
        outputs: torch.Tensor,
        forward_states: torch.Tensor,
        backward_states: torch.Tensor | None,
        lengths: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        rows = torch.arange(outputs.shape[0], device=outputs.device)
        last = lengths - 1
        if self.pooling == "last":
            # the forward direction ends at the last real token, the backward one at the first
            pooled = forward_states[rows, last]
            if backward_states is not None:
                pooled = merge_directions(pooled, backward_states[:, 0], self.merge_mode)
        elif self.pooling == "first_last":
            pooled = torch.cat([outputs[:, 0], outputs[rows, last]], dim=-1)
        elif self.pooling == "mean":
            pooled = (outputs * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(-1).to(outputs.dtype)
        elif self.pooling == "max":
            pooled = outputs.masked_fill(~mask.unsqueeze(-1), torch.finfo(outputs.dtype).min).amax(1)
        else:
            scores = self.attention(outputs).squeeze(-1).masked_fill(~mask, torch.finfo(outputs.dtype).min)
            weights = scores.softmax(dim=-1)  # (batch, time)
            pooled = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
        # a row without real tokens (an empty text) pools to zeros, whatever the pooling
        return torch.where(mask.any(1, keepdim=True), pooled, torch.zeros_like(pooled))


class ClassificationHead(nn.Module):
    """Dense hidden layers (the tutorials' `Dense(64, activation="relu")`) and the output projection."""

    def __init__(self, config: RecurrentConfig, input_size: int):
        super().__init__()
        layers = []
        for size in config.classifier_hidden_sizes:
            layers += [nn.Dropout(config.classifier_dropout), nn.Linear(input_size, size)]
            layers.append(_ACTIVATIONS[config.classifier_activation]())
            input_size = size
        layers += [nn.Dropout(config.classifier_dropout), nn.Linear(input_size, config.num_labels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.layers(hidden)


class RecurrentPreTrainedModel(PreTrainedModel):
    """Weight initialisation, frontend freezing and the shared class attributes of every hf_rnn model."""

    config_class = RecurrentConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    # the loss is a mean over the batch; without this the Trainer, seeing **kwargs in forward, would skip dividing by
    # gradient_accumulation_steps and scale the loss by the number of DDP processes
    accepts_loss_kwargs = False
    _no_split_modules = ["RecurrentLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        keras = self.config.initializer == "keras"
        if isinstance(module, nn.RNNBase):
            self._init_recurrent(module, keras)
        elif isinstance(module, nn.Embedding):
            if keras:
                init.uniform_(module.weight, -0.05, 0.05)
            else:
                init.normal_(module.weight, 0.0, 1.0)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.Linear):
            if keras:
                init.xavier_uniform_(module.weight)
                init.zeros_(module.bias)
            else:
                # PyTorch's own nn.Linear default
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))
                bound = 1 / math.sqrt(module.in_features)
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, RecurrentEmbeddings) and module.layer_weights is not None:
            init.zeros_(module.layer_weights)

    @staticmethod
    def _init_recurrent(module: nn.RNNBase, keras: bool):
        hidden = module.hidden_size
        for name, param in module.named_parameters():
            if not keras:
                # PyTorch's default for nn.RNN / nn.LSTM / nn.GRU
                init.uniform_(param, -1 / math.sqrt(hidden), 1 / math.sqrt(hidden))
            elif name.startswith("weight_ih"):
                init.xavier_uniform_(param)
            elif name.startswith("weight_hh"):
                init.orthogonal_(param)
            else:
                init.zeros_(param)
                # Keras' unit_forget_bias; PyTorch orders LSTM gates (input, forget, cell, output) and has two biases
                if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):
                    if not getattr(param, "_is_hf_initialized", False):
                        param[hidden : 2 * hidden].fill_(1.0)

    def freeze_frontend(self) -> None:
        """Applies `config.freeze_frontend` to the encoder frontend, if any.

        Called at the end of construction and again after `from_pretrained`, since loading weights in transformers
        v5 resets `requires_grad` set during `__init__`.
        """
        frontend = getattr(self.base_model, "frontend", None)
        if frontend is None:
            return
        mode = self.config.freeze_frontend
        frontend.requires_grad_(mode == "none")
        if mode == "embeddings":
            frontend.requires_grad_(True)
            frontend.get_input_embeddings().requires_grad_(False)
            embeddings = getattr(frontend, "embeddings", None)
            if embeddings is not None:
                embeddings.requires_grad_(False)

    def _auto_map(self) -> dict[str, str]:
        """The `auto_map` written into config.json: every Auto class this model's saved code files provide."""
        family = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[self.config.cell_type]
        return {
            "AutoConfig": f"configuration_rnn.{family}Config",
            "AutoModel": f"modeling_rnn.{family}Model",
            "AutoModelForSequenceClassification": f"modeling_rnn.{family}ForSequenceClassification",
            "AutoModelForTokenClassification": f"modeling_rnn.{family}ForTokenClassification",
        }

    def save_pretrained(self, save_directory, *args, **kwargs):
        # transformers records only the saved class in `auto_map`; fill it for every Auto class so that
        # `trust_remote_code=True` works with any of them where hf_rnn is not installed
        self.config.auto_map = self._auto_map()
        return super().save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        # `output_loading_info=True` returns (model, info)
        (loaded[0] if isinstance(loaded, tuple) else loaded).freeze_frontend()
        return loaded

    def train(self, mode: bool = True):
        super().train(mode)
        frontend = getattr(self.base_model, "frontend", None)
        if frontend is not None and self.config.freeze_frontend == "all":
            # a fully frozen encoder stays in eval mode (no dropout), so its outputs are fixed and cacheable
            frontend.eval()
        return self


class RecurrentModel(RecurrentPreTrainedModel):
    """The bare recurrent encoder: embeddings (or a transformer frontend), stacked recurrent layers and a pooler.

    Returns a `BaseModelOutputWithPooling` whose `last_hidden_state` is `(batch, time, config.output_size)` (zero at
    padding positions), `pooler_output` is `(batch, config.pooled_size)` and `hidden_states` (when asked for) holds
    the embeddings and every layer's outputs.
    """

    def __init__(self, config: RecurrentConfig, add_pooling_layer: bool = True):
        r"""
        add_pooling_layer (`bool`, *optional*, defaults to `True`):
            Whether to pool each sequence into `pooler_output`; heads that read only the token outputs (tagging,
            language models) leave it out, so an attention pooler has no parameters without gradients.
        """
        super().__init__(config)
        self.embeddings = RecurrentEmbeddings(config)
        input_sizes = [config.embedding_dim] + [config.output_size] * (config.num_layers - 1)
        self.layers = nn.ModuleList(RecurrentLayer(config, size) for size in input_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.pooler = RecurrentPooler(config) if add_pooling_layer else None
        # Initialize weights and apply final processing
        self.post_init()
        self.freeze_frontend()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # `load_state_dict` with the names files keep (see modeling_rnn_embeddings.py), e.g. when the Trainer resumes
        rename_checkpoint_keys(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def frontend(self) -> PreTrainedModel | None:
        """The transformer encoder of a `frontend="bert"` model (inside `embeddings`), else None."""
        return self.embeddings.frontend

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.embeddings.set_input_embeddings(value)

    def _one_padding_step(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None):
        reference = input_ids if input_ids is not None else inputs_embeds
        batch = reference.shape[0]
        mask = torch.zeros(batch, 1, dtype=torch.long, device=reference.device)
        if input_ids is not None:
            return torch.full_like(mask, self.config.pad_token_id), None, mask
        return None, inputs_embeds.new_zeros(batch, 1, inputs_embeds.shape[-1]), mask

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[RecurrentKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, embedding_dim)`, *optional*):
            The vectors the recurrent layers read, in place of `input_ids`: token embeddings, or for a
            `frontend="bert"` model the encoder's outputs, which then does not run (the feature cache of
            `hf_rnn.frontends.add_frontend_features` passes a fully frozen encoder's outputs this way; one step per
            text for `frontend_output="pooled"`).

        A tuple instead of the output object when `return_dict=False` is passed or set in the config.
        """
        check_forward_kwargs(kwargs)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if (input_ids if input_ids is not None else inputs_embeds).shape[1] == 0:
            # a batch of empty texts (pipeline("") tokenizes to nothing) becomes one padding step
            input_ids, inputs_embeds, attention_mask = self._one_padding_step(input_ids, inputs_embeds)
        if attention_mask is None:
            # like Keras' mask_zero: without a mask, padding ids are masked
            attention_mask = (
                input_ids.ne(self.config.pad_token_id).long()
                if input_ids is not None
                else torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
            )

        # 1. embed: (batch, time, embedding_dim)
        hidden, attention_mask = self.embeddings(input_ids, attention_mask, token_type_ids, inputs_embeds)
        mask = attention_mask.bool()
        # an empty sequence is read as one padding step, so every row has a state to pool
        lengths = mask.sum(1).clamp(min=1)
        positions = torch.arange(mask.shape[1], device=mask.device)
        # a check on the values, which a traced graph cannot hold: exported models take right padding on trust
        if not torch.compiler.is_compiling() and not torch.equal(mask, positions < mask.sum(1, keepdim=True)):
            raise ValueError(
                "hf_rnn models need right-padded inputs (attention_mask of 1s then 0s); "
                "set tokenizer.padding_side = 'right'."
            )
        all_hidden_states = (hidden,) if output_hidden_states else None

        # 2. run the stacked recurrent layers over the real tokens: (batch, time, output_size)
        for index, layer in enumerate(self.layers):
            if index > 0:
                hidden = self.dropout(hidden)
            hidden, forward_states, backward_states = layer(hidden, lengths)
            if output_hidden_states:
                all_hidden_states += (hidden,)

        # 3. pool over real tokens: (batch, pooled_size); padding positions of the sequence output are zeroed
        pooled = None if self.pooler is None else self.pooler(hidden, forward_states, backward_states, lengths, mask)
        hidden = hidden * mask.unsqueeze(-1).to(hidden.dtype)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden_states
        )


def classification_loss(config: RecurrentConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss per `config.problem_type`, inferred once from the labels as `BertForSequenceClassification` does."""
    if config.problem_type is None:
        if config.num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if config.num_labels == 1:
            return nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(logits.shape[:-1]))
        # multi-target regression: one float per label
        return nn.functional.mse_loss(logits, labels.to(logits.dtype).view(logits.shape))
    if config.problem_type == "single_label_classification":
        # -100 marks positions to ignore (padding and sub-word continuations in token classification)
        return nn.functional.cross_entropy(logits.reshape(-1, config.num_labels), labels.reshape(-1))
    return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class RecurrentForSequenceClassification(RecurrentPreTrainedModel):
    """A recurrent encoder with a dense classification (or regression) head on its pooled output."""

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.backbone = self.base_model_class(config)
        self.classifier = ClassificationHead(config, config.pooled_size)
        # Initialize weights and apply final processing
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[RecurrentKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, config.num_labels)` (cross-entropy); floats of shape `(batch_size, num_labels)`
            for multi-label classification (BCE); floats for regression (MSE): of shape `(batch_size,)` when
            `config.num_labels == 1`, `(batch_size, num_labels)` for several targets with
            `problem_type="regression"`.
        inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, embedding_dim)`, *optional*):
            The vectors the recurrent layers read, in place of `input_ids` (see [`RecurrentModel`]).
        """
        check_forward_kwargs(kwargs)
        outputs = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        # 4. classify the pooled vector: (batch, num_labels)
        logits = self.classifier(outputs.pooler_output)
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class RecurrentForTokenClassification(RecurrentPreTrainedModel):
    """A recurrent encoder with a dense classifier on every token (tagging: NER, POS, the many-to-many case)."""

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.backbone = self.base_model_class(config, add_pooling_layer=False)
        self.classifier = ClassificationHead(config, config.output_size)
        # Initialize weights and apply final processing
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[RecurrentKwargs],
    ) -> TokenClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Tag indices in `[0, config.num_labels)`; -100 marks positions to ignore.
        inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, embedding_dim)`, *optional*):
            The vectors the recurrent layers read, in place of `input_ids` (see [`RecurrentModel`]).
        """
        check_forward_kwargs(kwargs)
        outputs = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        # 4. classify every token: (batch, time, num_labels)
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                self.config.problem_type = "single_label_classification"
            loss = classification_loss(self.config, logits, labels)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class RNNModel(RecurrentModel):
    config_class = RNNConfig


class LSTMModel(RecurrentModel):
    config_class = LSTMConfig


class GRUModel(RecurrentModel):
    config_class = GRUConfig


class RNNForSequenceClassification(RecurrentForSequenceClassification):
    config_class = RNNConfig
    base_model_class = RNNModel


class LSTMForSequenceClassification(RecurrentForSequenceClassification):
    config_class = LSTMConfig
    base_model_class = LSTMModel


class GRUForSequenceClassification(RecurrentForSequenceClassification):
    config_class = GRUConfig
    base_model_class = GRUModel


class RNNForTokenClassification(RecurrentForTokenClassification):
    config_class = RNNConfig
    base_model_class = RNNModel


class LSTMForTokenClassification(RecurrentForTokenClassification):
    config_class = LSTMConfig
    base_model_class = LSTMModel


class GRUForTokenClassification(RecurrentForTokenClassification):
    config_class = GRUConfig
    base_model_class = GRUModel


__all__ = [
    "RecurrentKwargs",
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
]
