"""Keras-style `model.summary()` for hf_rnn models: layers, output shapes and parameter counts.

Counts follow PyTorch's parameterisation, which differs from Keras for recurrent cells: PyTorch keeps two bias
vectors per gate (`bias_ih` and `bias_hh`), Keras one. An LSTM with 32 inputs and 16 units has
4 * (16 * 32 + 16 * 16 + 16 + 16) = 3,200 parameters here and 4 * (16 * 32 + 16 * 16 + 16) = 3,136 in Keras;
a GRU has 3 gates (Keras' default `reset_after=True` also keeps two biases, so GRU counts agree), a simple RNN one.
"""

from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .modeling_rnn import RecurrentLayer, RecurrentPooler, RecurrentPreTrainedModel
from .modeling_rnn_embeddings import RecurrentEmbeddings


@dataclass
class SummaryRow:
    name: str
    layer_type: str
    output_shape: str
    params: int
    trainable: int


@dataclass
class ModelSummary:
    """The table `summary` prints; `str(summary)` renders it."""

    model_name: str
    rows: list[SummaryRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __str__(self) -> str:
        headers = ("Layer (type)", "Output Shape", "Param #")
        cells = [(f"{r.name} ({r.layer_type})", r.output_shape, f"{r.params:,}") for r in self.rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

        def render(row: tuple[str, str, str]) -> str:
            return f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2].rjust(widths[2])}"

        line = render(headers)
        rule = "=" * len(line)
        body = [render(cell) for cell in cells]
        return "\n".join(
            [
                f'Model: "{self.model_name}"',
                rule,
                line,
                rule,
                *body,
                rule,
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
            ]
        )


def _layer_type(module: nn.Module) -> str:
    if isinstance(module, RecurrentLayer):
        cell = type(module.forward_cell).__name__
        return f"Bidirectional({cell})" if module.backward_cell is not None else cell
    if isinstance(module, RecurrentEmbeddings):
        # the table or the encoder inside, as Keras shows `Embedding`
        return type(module.frontend if module.frontend is not None else module.token_embeddings).__name__
    return type(module).__name__


def _shape(output) -> str:
    if isinstance(output, tuple):
        output = output[0]
    if hasattr(output, "last_hidden_state"):
        output = output.last_hidden_state
    if isinstance(output, PackedSequence):
        # a cell run over packed sequences: its rows are the real tokens of the batch
        return f"(batch, time, {output.data.shape[-1]})"
    dims = ["batch", *(["time"] if output.dim() == 3 else []), *map(str, output.shape[output.dim() - 1 :])]
    return "(" + ", ".join(dims) + ")"


def _rows_modules(model: RecurrentPreTrainedModel) -> list[tuple[str, nn.Module]]:
    """The modules shown as rows: embeddings or frontend, each recurrent layer, the pooler and the head's layers."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, (RecurrentLayer, RecurrentPooler)) or name.endswith(("embeddings", "frontend")):
            rows.append((name, module))
        elif isinstance(module, nn.Linear) and ".attention" not in name:
            rows.append((name, module))
    return [(n, m) for n, m in rows if not any(n.startswith(p + ".") for p, _ in rows)]


def _record_shape(shapes: dict[str, str], name: str, _module: nn.Module, _inputs, output) -> None:
    shapes[name] = _shape(output)


def summary(model: RecurrentPreTrainedModel, sequence_length: int = 16, print_fn=print) -> ModelSummary:
    """Prints and returns a Keras-style summary of an hf_rnn model.

    Output shapes come from a forward pass on a dummy batch; `batch` and `time` stand for the variable dimensions.

    Args:
        model ([`RecurrentPreTrainedModel`]): the model to describe.
        sequence_length (`int`, *optional*, defaults to 16): length of the dummy sequences.
        print_fn (`Callable`, *optional*, defaults to `print`): where the table goes; `None` prints nothing.

    Example:

    ```python
    >>> from hf_rnn import LSTMConfig, LSTMForSequenceClassification, summary
    >>> table = summary(LSTMForSequenceClassification(LSTMConfig(vocab_size=1000, embedding_dim=32, hidden_size=16)))
    >>> table.trainable_params
    ```
    """
    rows = _rows_modules(model)
    shapes: dict[str, str] = {}
    cell_shapes: dict[str, str] = {}
    hooks = []
    for name, module in rows:
        hooks.append(module.register_forward_hook(partial(_record_shape, shapes, name)))
        if isinstance(module, RecurrentLayer):
            # a language model runs each layer's cell itself (to carry the recurrent state), not the layer
            hooks.append(module.forward_cell.register_forward_hook(partial(_record_shape, cell_shapes, name)))
    pad = model.config.pad_token_id
    input_ids = torch.full((2, sequence_length), 1 if pad != 1 else 2, dtype=torch.long, device=model.device)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()

    table = ModelSummary(model_name=type(model).__name__)
    counted: set[int] = set()
    for name, module in rows:
        # a tied weight (a language model's head shares the embedding matrix) counts once, in its first row, so the
        # rows add up to the total as in Keras
        own = [p for p in module.parameters() if id(p) not in counted]
        counted.update(id(p) for p in own)
        params = sum(p.numel() for p in own)
        trainable = sum(p.numel() for p in own if p.requires_grad)
        shape = shapes.get(name, cell_shapes.get(name, "?"))
        table.rows.append(SummaryRow(name, _layer_type(module), shape, params, trainable))
    table.total_params = sum(p.numel() for p in model.parameters())
    table.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if print_fn is not None:
        print_fn(str(table))
    return table
