"""The measurements behind `hf-rnn bench`: hf_rnn against a hand-written PyTorch loop and the Keras tutorials.

Run the full benchmark (several minutes on a 2-core CPU) or the quick one (under a minute, a scaled-down workload):

    hf-rnn bench
    hf-rnn bench --quick
    hf-rnn bench --cells lstm,gru --no-keras --output-dir bench_results

or from Python:

    >>> from hf_rnn.benchmark import format_table, run_benchmark
    >>> print(format_table(run_benchmark(quick=True)))

Workload W (the default): a bidirectional recurrent classifier (embedding 128, hidden 128, a `Dense(64, relu)` head),
batch 64, vocabulary 20k, 1,536 synthetic sequences with lengths exp(Normal(4.4, 0.6)) clipped to 20..256, Adam with
learning rate 1e-3, a fixed seed. Every variant trains for one epoch per repeat (forward, backward, optimizer step,
collation included) and predicts once per repeat; the variants are interleaved, each repeat in a rotated order, after
a warm-up pass of each, and the table shows medians of real (non-padding) tokens per second:

- `baseline`: a plain `nn.LSTM` / `nn.GRU` / `nn.RNN` classifier in a bare loop over padded random batches, what a
  user writes by hand;
- `plain_bucketed`: the same plain module over the very batches hf_rnn's Trainer made (inference: length-sorted
  batches), so the price of hf_rnn's exact padding and of the Trainer shows;
- `hf_rnn_fp32` / `hf_rnn_bf16`: hf_rnn through its `transformers.Trainer` (`RecurrentTrainer`, as `hf-rnn train`)
  with length-grouped batches (`train_sampling_strategy="group_by_length"`) and `PaddingCollator`, fp32 or bf16
  autocast, timed per epoch inside `Trainer.train()` (a real run trains all its epochs in one call; the start-up of
  each call is reported apart); inference is a loop over the dataset sorted by length (`hf_rnn.data.sort_by_length`);
- `keras_fixed` / `keras_bucketed`: the seed tutorials' Keras 3 model (`Embedding(mask_zero=True)`,
  `Bidirectional(LSTM(128))`, `Dense(64, relu)`, `Dense(1)`) on TensorFlow, with their fixed-length padding to the
  longest sequence, or on hf_rnn's batches padded per batch. They run in a worker process of their own, so that
  TensorFlow's threads and objects stay out of the torch rows. Skipped with a note when TensorFlow is not installed
  (`pip install "hf-rnn[bench]"`).

Peak memory is the growth of the resident set size during each variant's warm-up pass (psutil, sampled every 2 ms).
A sweep of single-length batches (64..1024 tokens) shows that hf_rnn's training cost per token stays flat as
sequences grow, i.e. the cost is linear in length. `ideal bucketing gain` is how many fewer padded tokens hf_rnn's
batches hold than random ones for the same real tokens: the most that length grouping can buy.

The package: `workload` (the synthetic data, batches, the row interface and the timing helpers), `torch_rows` (the
PyTorch and Trainer rows, the length sweep, the frontend section), `keras_rows` (the Keras worker process), `load`
(training on a busy machine), `run` (the driver) and `report` (machine facts, targets, the markdown). A new row is one
more entry in `run.VARIANTS`.
"""

from .pipeline import busy_machine_section, tokenization_section
from .report import format_table
from .run import DEFAULT_SECTIONS, SECTIONS, VARIANTS, run_benchmark
from .torch_rows import EpochTimer, TrainerVariant
from .workload import CELLS, Workload, make_sequences

__all__ = [
    "CELLS",
    "Workload",
    "VARIANTS",
    "TrainerVariant",
    "EpochTimer",
    "busy_machine_section",
    "tokenization_section",
    "SECTIONS",
    "DEFAULT_SECTIONS",
    "make_sequences",
    "run_benchmark",
    "format_table",
]
