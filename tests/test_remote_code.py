"""Saved models load with `trust_remote_code=True` in a process where hf_rnn cannot be imported."""

import json
import subprocess
import sys
import textwrap

import torch

from hf_rnn import GRUConfig, GRUForSequenceClassification

BLOCK_HF_RNN = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockHfRnn(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hf_rnn" or name.startswith("hf_rnn."):
                raise ImportError("hf_rnn is blocked in this test")

    sys.meta_path.insert(0, BlockHfRnn())
    """
)


def run_isolated(code: str, tmp_path) -> dict:
    """Runs code in a fresh interpreter that cannot import hf_rnn and returns the JSON it prints last."""
    script = BLOCK_HF_RNN + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_remote_code_load_without_hf_rnn(tmp_path):
    config = GRUConfig(vocab_size=50, embedding_dim=8, hidden_size=8, bidirectional=True, id2label={0: "a", 1: "b"})
    model = GRUForSequenceClassification(config).eval()
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    input_ids = [[5, 6, 7, 8], [9, 10, 0, 0]]
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(input_ids)).logits.tolist()

    # the files that make remote code work: both sources, and an auto_map for every Auto class
    assert (model_dir / "modeling_rnn.py").exists() and (model_dir / "configuration_rnn.py").exists()
    auto_map = json.loads((model_dir / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
    }

    got = run_isolated(
        f"""
        import json, torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification
        path = {str(model_dir)!r}
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
        base = AutoModel.from_pretrained(path, trust_remote_code=True)
        tagger = AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=True)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor({input_ids})).logits.tolist()
        print(json.dumps({{"logits": logits, "classes": [type(m).__name__ for m in (model, base, tagger)],
                          "module": type(model).__module__}}))
        """,
        tmp_path,
    )
    assert got["classes"] == ["GRUForSequenceClassification", "GRUModel", "GRUForTokenClassification"]
    assert not got["module"].startswith("hf_rnn")
    torch.testing.assert_close(torch.tensor(got["logits"]), torch.tensor(expected))
