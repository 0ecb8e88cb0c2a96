"""Recurrent language models for transformers: `RNNForCausalLM`, `LSTMForCausalLM`, `GRUForCausalLM`.

A causal LM is the one-to-many case of the tutorials (text generators, the character RNN): a unidirectional stack of
the same recurrent layers as the classifiers (`modeling_rnn.RecurrentModel`, so checkpoints share their layout),
then an output projection over the vocabulary, tied to the embedding matrix or not. Generation goes through
transformers' `GenerationMixin` with the recurrent state as the cache, as Mamba's does: the prompt runs once, then
each new token costs one step of each layer, not a rerun of the prefix. Greedy search, sampling and beam search work
as for any transformers model (the cache reorders its states for beam search).

Padding: training batches are right-padded (labels -100 at padding); prompts for generation are left-padded, as for
every decoder-only transformers model. Either way a padded row gives the same outputs and state as the row alone:
left-padded rows are shifted to the right before the layers run, and the state after the last real token is read
with `pack_padded_sequence`. This file imports only hf_rnn's own modeling and configuration files, relatively, so it
also works as Hub remote code.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers.cache_utils import Cache, LinearAttentionLayer
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.processing_utils import Unpack
from transformers.utils.generic import can_return_tuple

from .configuration_rnn import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .modeling_rnn import (
    GRUModel,
    LSTMModel,
    RecurrentKwargs,
    RecurrentPreTrainedModel,
    RNNModel,
    check_forward_kwargs,
)

# a layer's state: (h,) for a simple RNN or GRU, (h, c) for an LSTM; each of shape (1, batch, hidden_size)
LayerState = tuple[torch.Tensor, ...]


class RecurrentCache(Cache):
    """The recurrent state of every layer as a transformers `Cache` (one linear-attention layer per recurrent layer),
    so `generate` carries it between steps and reorders it for beam search like any other cache.

    Args:
        num_layers (`int`): number of recurrent layers.
        states_per_layer (`int`): 2 for an LSTM (h and c), 1 for a simple RNN or a GRU.
    """

    def __init__(self, num_layers: int, states_per_layer: int):
        super().__init__(layers=[LinearAttentionLayer(number_of_states=states_per_layer) for _ in range(num_layers)])

    def get_state(self, layer_idx: int) -> LayerState | None:
        """The layer's state after the tokens seen so far, or None before the first forward."""
        layer = self.layers[layer_idx]
        if not all(layer.is_recurrent_states_initialized.values()):
            return None
        return tuple(layer.recurrent_states[i].unsqueeze(0) for i in range(layer.number_of_states))

    def set_state(self, layer_idx: int, state: LayerState) -> None:
        layer = self.layers[layer_idx]
        # stored batch first, `(batch, hidden_size)`, which is the dimension the cache reorders for beam search
        for index, tensor in enumerate(t.squeeze(0) for t in state):
            if layer.is_recurrent_states_initialized[index] and layer.recurrent_states[index].shape != tensor.shape:
                # a new batch size (the cache of an earlier generate call reused): start the buffer again
                layer.is_recurrent_states_initialized[index] = False
            layer.update_recurrent_state(tensor, state_idx=index)


def _padding_layout(mask: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The real lengths of a padded batch and whether it is left-padded; raises for any other layout."""
    lengths = mask.sum(1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if torch.equal(mask, positions < lengths.unsqueeze(1)):
        return lengths, False
    if torch.equal(mask, positions >= (mask.shape[1] - lengths).unsqueeze(1)):
        return lengths, True
    raise ValueError(
        "hf_rnn language models need left- or right-padded inputs (the attention_mask of each row is 0s then 1s, or "
        "1s then 0s); pad prompts on the left for generation (tokenizer.padding_side = 'left')."
    )


def _shift_rows(hidden: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Rolls each row of `(batch, time, features)` left by its own shift (left padding -> right padding); the inverse
    is a shift by `time - shift`."""
    time = hidden.shape[1]
    index = (torch.arange(time, device=hidden.device) + shifts.unsqueeze(1)) % time
    return hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


def run_cell(
    cell: nn.RNNBase, hidden: torch.Tensor, state: LayerState | None, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, LayerState]:
    """Runs one unidirectional layer from `state` over a right-padded batch.

    Returns the outputs `(batch, time, hidden_size)` (exact at real positions) and the state after each row's last
    real token. With `lengths=None` every position counts (no padding, or a caller that does not need the state).
    """
    hx = None if state is None else (state if len(state) == 2 else state[0])
    if lengths is None:
        outputs, final = cell(hidden, hx)
        return outputs, final if isinstance(final, tuple) else (final,)
    # a row without real tokens here keeps its state; packing needs at least one step per row
    packed = pack_padded_sequence(hidden, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    outputs, final = cell(packed, hx)
    outputs = pad_packed_sequence(outputs, batch_first=True, total_length=hidden.shape[1])[0]
    final = final if isinstance(final, tuple) else (final,)
    if state is not None:
        empty = (lengths == 0).view(1, -1, 1)
        final = tuple(torch.where(empty, old, new) for old, new in zip(state, final))
    return outputs, final


class RecurrentForCausalLM(RecurrentPreTrainedModel, GenerationMixin):
    """A unidirectional recurrent stack with a next-token head: `logits[:, t]` predicts token `t + 1`.

    The head is `lm_head`, an `embedding_dim -> vocab_size` projection whose weight is the embedding matrix when
    `config.tie_word_embeddings` (the default); `projection` maps `hidden_size` to `embedding_dim` first when the
    two differ. Untied, `lm_head` maps `hidden_size` to the vocabulary directly. Dropout: `embedding_dropout` on the
    embeddings, `dropout` between layers, `classifier_dropout` before the head.
    """

    _tied_weights_keys = {"lm_head.weight": "backbone.embeddings.token_embeddings.weight"}
    # generation keeps the recurrent state as its cache (see `RecurrentCache`); assisted decoding, which needs to
    # roll a cache back, is refused for stateful models
    _is_stateful = True

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        if config.bidirectional:
            raise ValueError(
                "A causal language model reads left to right: set bidirectional=False (a backward layer would see "
                "the tokens it has to predict)."
            )
        if config.frontend != "none":
            raise ValueError(
                f"frontend={config.frontend!r} is not supported by *ForCausalLM (a bidirectional encoder sees the "
                "tokens it has to predict); use frontend='none'."
            )
        # every position is read, none pooled: no pooler (an attention pooler's parameters would get no gradients,
        # which DistributedDataParallel refuses)
        self.backbone = self.base_model_class(config, add_pooling_layer=False)
        tied = config.tie_word_embeddings
        needs_projection = tied and config.hidden_size != config.embedding_dim
        self.projection = nn.Linear(config.hidden_size, config.embedding_dim) if needs_projection else None
        # `classifier_dropout` is the dropout before the head, as for the classifiers' dense layers
        self.head_dropout = nn.Dropout(config.classifier_dropout)
        self.lm_head = nn.Linear(config.embedding_dim if tied else config.hidden_size, config.vocab_size)
        # Initialize weights and apply final processing
        self.post_init()

    def _auto_map(self) -> dict[str, str]:
        family = type(self).__name__.removesuffix("ForCausalLM")
        return {**super()._auto_map(), "AutoModelForCausalLM": f"modeling_rnn_lm.{family}ForCausalLM"}

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head = new_embeddings

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # the forward creates its own `RecurrentCache` (generate would otherwise build a key/value cache)
        return False

    def new_cache(self) -> RecurrentCache:
        """An empty cache for this model's layers."""
        return RecurrentCache(self.config.num_layers, 2 if self.config.cell_type == "lstm" else 1)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: RecurrentCache | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[RecurrentKwargs],
    ) -> CausalLMOutputWithPast:
        r"""
        attention_mask (`torch.Tensor` of shape `(batch_size, past_length + sequence_length)`, *optional*):
            1 for real tokens, 0 for padding; left or right padding. Only its last `sequence_length` columns are read
            (generation passes the mask of the whole text so far).
        cache (`RecurrentCache`, *optional*):
            The state after the tokens seen so far, returned by the previous call with `use_cache=True`; the
            outputs are then those of `previous tokens + input_ids`.
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Token ids to predict; they are shifted inside the model, so `labels = input_ids` works. -100 is ignored.
        use_cache (`bool`, *optional*):
            Return the state as `cache`. Defaults to `config.use_cache` in eval mode and `False` in training.
        logits_to_keep (`int`, *optional*, defaults to 0):
            Compute logits for the last `logits_to_keep` positions only (0: all); generation needs just the last.

        Besides these, `generate` passes `return_dict` and, when asked for, `output_hidden_states` or
        `output_attentions` (refused when `True`); any other keyword is refused as the classifiers refuse it (see
        [`RecurrentKwargs`]): `position_ids`, for one, means nothing to a state that already holds the position.
        A tuple instead of the output object when `return_dict=False` is passed or set in the config.
        """
        check_forward_kwargs(kwargs)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if use_cache and cache is None:
            cache = self.new_cache()
        backbone = self.backbone

        # 1. embed: (batch, time, embedding_dim)
        hidden, _ = backbone.embeddings(input_ids, inputs_embeds=inputs_embeds)
        time = hidden.shape[1]
        lengths, shifts = None, None
        if attention_mask is not None and not attention_mask[:, -time:].bool().all():
            mask = attention_mask[:, -time:].bool()
            lengths, left_padded = _padding_layout(mask)
            if left_padded:
                # run left-padded rows as right-padded ones, so the pads come after the state that matters
                shifts = time - lengths
                hidden = _shift_rows(hidden, shifts)
        all_hidden_states = (hidden,) if output_hidden_states else None

        # 2. run the stacked layers from the cached state: (batch, time, hidden_size)
        for index, layer in enumerate(backbone.layers):
            if index > 0:
                hidden = backbone.dropout(hidden)
            state = cache.get_state(index) if cache is not None else None
            # the exact state after padded rows needs packing; without a cache the padded outputs suffice
            hidden, state = run_cell(layer.forward_cell, hidden, state, lengths if use_cache else None)
            if use_cache:
                cache.set_state(index, state)
            if output_hidden_states:
                all_hidden_states += (hidden,)
        if lengths is not None:
            # padding positions hold zeros, as in the classifiers' sequence outputs
            real = torch.arange(time, device=hidden.device) < lengths.unsqueeze(1)
            hidden = hidden * real.unsqueeze(-1).to(hidden.dtype)
            if shifts is not None:
                hidden = _shift_rows(hidden, time - shifts)

        # 3. next-token logits: (batch, kept positions, vocab_size)
        kept = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        hidden_kept = self.head_dropout(hidden[:, kept])
        if self.projection is not None:
            hidden_kept = self.projection(hidden_kept)
        logits = self.lm_head(hidden_kept)
        loss = None
        if labels is not None:
            # the shared causal-LM loss: shift by one, ignore -100, mean over the predicted tokens
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size)

        return CausalLMOutputWithPast(
            loss=loss, logits=logits, cache=cache if use_cache else None, hidden_states=all_hidden_states
        )


class RNNForCausalLM(RecurrentForCausalLM):
    config_class = RNNConfig
    base_model_class = RNNModel


class LSTMForCausalLM(RecurrentForCausalLM):
    config_class = LSTMConfig
    base_model_class = LSTMModel


class GRUForCausalLM(RecurrentForCausalLM):
    config_class = GRUConfig
    base_model_class = GRUModel


__all__ = ["RecurrentCache", "RecurrentForCausalLM", "RNNForCausalLM", "LSTMForCausalLM", "GRUForCausalLM"]
