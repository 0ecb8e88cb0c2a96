import multiprocessing
import os
import traceback

import numpy as np

from .workload import _KERAS_CELLS, Batch, Context, Counts, Variant, Workload, _counts, _warm_up, pad_batch


class _KerasRunner:
    """The seed tutorials' Keras model on TensorFlow, trained with `model.fit` (one epoch per pass); lives in the
    Keras worker process."""

    def __init__(
        self, cell: str, workload: Workload, seed: int, train_batches: list[Batch], infer_batches: list[Batch], width
    ):
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        layer = getattr(keras.layers, _KERAS_CELLS[cell])
        binary = workload.num_labels == 2
        self.model = keras.Sequential(
            [
                keras.Input(shape=(None,), dtype="int32"),
                keras.layers.Embedding(workload.vocab_size, workload.embedding_dim, mask_zero=True),
                keras.layers.Bidirectional(layer(workload.hidden_size)),
                keras.layers.Dense(workload.head_size, activation="relu"),
                keras.layers.Dense(1 if binary else workload.num_labels),
            ]
        )
        loss = (
            keras.losses.BinaryCrossentropy(from_logits=True)
            if binary
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        self.train_batches, self.infer_batches, self.width = train_batches, infer_batches, width
        spec = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32))
        self.train_data = tf.data.Dataset.from_generator(
            lambda: self._padded(self.train_batches), output_signature=spec
        )
        self.infer_data = tf.data.Dataset.from_generator(
            lambda: (ids for ids, _ in self._padded(self.infer_batches)), output_signature=spec[0]
        )

    def _padded(self, batches: list[Batch]):
        for batch in batches:
            yield pad_batch(batch, self.width)[0].astype(np.int32), batch.labels.astype(np.int32)

    def warm_up(self) -> tuple[float, float]:
        return _warm_up(self)

    def train(self) -> None:
        self.model.fit(self.train_data, epochs=1, verbose=0)

    def infer(self) -> None:
        self.model.predict(self.infer_data, verbose=0)


def _keras_worker(connection) -> None:
    """Serves `KerasVariant`s one command at a time. In a process of its own, TensorFlow's thread pools, allocator and
    the Python objects it imports (which slow every `gc.collect()` the Trainer runs) stay out of the torch rows."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    runners = {}
    while (message := connection.recv()) is not None:
        command, key, payload = message
        try:
            if command == "setup":
                runners[key] = _KerasRunner(**payload)
                result = None
            else:
                result = getattr(runners[key], command)()
        except Exception:  # report any failure to the parent, which raises it with the worker's traceback
            connection.send(("error", traceback.format_exc()))
        else:
            connection.send(("ok", result))


class _KerasWorker:
    """The parent's handle on the Keras worker process, started on first use."""

    def __init__(self):
        self._process = self._connection = None

    def call(self, command: str, key: str, payload: dict | None = None):
        if self._process is None:
            context = multiprocessing.get_context("spawn")
            self._connection, child = context.Pipe()
            self._process = context.Process(target=_keras_worker, args=(child,), daemon=True)
            self._process.start()
        self._connection.send((command, key, payload))
        while not self._connection.poll(1.0):
            if not self._process.is_alive():
                code, self._process = self._process.exitcode, None
                raise RuntimeError(
                    f"The Keras worker process exited (code {code}) during {command} {key}. Started from a script, "
                    "the benchmark needs the usual `if __name__ == '__main__':` guard (the worker is spawned)."
                )
        status, result = self._connection.recv()
        if status == "error":
            raise RuntimeError(f"Keras worker failed on {command} {key}:\n{result}")
        return result

    def close(self) -> None:
        if self._process is not None:
            self._connection.send(None)
            self._process.join(timeout=30)
            self._process = None


class KerasVariant(Variant):
    """A Keras row, run by the Keras worker process: `fixed_length` pads every sequence to the workload's maximum as
    the tutorials do (`TextVectorization(output_sequence_length=...)`), over random batches; otherwise hf_rnn's
    batches are padded per batch (inference: length-sorted)."""

    def __init__(self, name: str, description: str, context: Context, fixed_length: bool):
        self.name, self.description, self.context, self.fixed_length = name, description, context, fixed_length
        self.key = f"{context.cell}/{name}"

    def setup(self) -> None:
        context = self.context
        if self.fixed_length:
            self.train_batches = self.infer_batches = context.random_batches
        else:
            self.train_batches, self.infer_batches = context.trainer_batches, context.sorted_batches
        width = context.workload.max_length if self.fixed_length else None
        payload = {
            "cell": context.cell,
            "workload": context.workload,
            "seed": context.seed,
            "train_batches": self.train_batches,
            "infer_batches": self.infer_batches,
            "width": width,
        }
        context.keras_worker.call("setup", self.key, payload)

    def warm_up(self) -> tuple[float, float]:
        return self.context.keras_worker.call("warm_up", self.key)

    def _pass_counts(self, batches: list[Batch]) -> Counts:
        if not self.fixed_length:
            return _counts(batches)
        real = sum(batch.real_tokens for batch in batches)
        return Counts(real, sum(len(batch.input_ids) for batch in batches) * self.context.workload.max_length)

    def train(self) -> Counts:
        self.context.keras_worker.call("train", self.key)
        return self._pass_counts(self.train_batches)

    def infer(self) -> Counts:
        self.context.keras_worker.call("infer", self.key)
        return self._pass_counts(self.infer_batches)
