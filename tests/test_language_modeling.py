"""Recurrent language models: the recurrent state as the generation cache, padding, the loss, tokenizers, a tiny
character model trained through the recipe pipeline, the `generate` command and remote code without hf_rnn."""

import ast
import json
import math
import re
import textwrap
from pathlib import Path

import pytest
import torch
from test_reliability import FORBIDDEN_CALLS, FORBIDDEN_MODULES
from test_remote_code import run_isolated
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

import hf_rnn
from hf_rnn import GRUConfig, GRUForCausalLM, LSTMConfig, LSTMForCausalLM, RNNConfig, RNNForCausalLM
from hf_rnn.cli import main
from hf_rnn.hub import _files_to_upload, check_model_dir
from hf_rnn.language_modeling import generate_text
from hf_rnn.recipes import RecipeError, load_recipe
from hf_rnn.tokenization import TokenizerSpec, build_tokenizer
from hf_rnn.training import train

VOCAB = 40
FAMILIES = [(RNNConfig, RNNForCausalLM), (LSTMConfig, LSTMForCausalLM), (GRUConfig, GRUForCausalLM)]
TEXTS = ["A wonderful film, truly moving.", "Dull and far too long!", "The plot made no sense at all."]


def tiny_lm(family=LSTMForCausalLM, num_layers: int = 2, tie: bool = True, embedding_dim: int = 12, seed: int = 0):
    config_class = {RNNForCausalLM: RNNConfig, LSTMForCausalLM: LSTMConfig, GRUForCausalLM: GRUConfig}[family]
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=VOCAB,
        embedding_dim=embedding_dim,
        hidden_size=16,
        num_layers=num_layers,
        tie_word_embeddings=tie,
        bos_token_id=2,
        eos_token_id=None,
    )
    return family(config).eval()


def count_forward_lengths(model) -> list[int]:
    lengths = []
    model.register_forward_pre_hook(
        lambda m, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    return lengths


@pytest.mark.parametrize("family", [cls for _, cls in FAMILIES], ids=lambda c: c.__name__)
@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_cached_greedy_generation_equals_rerunning_the_prefix(family, tie):
    model = tiny_lm(family, tie=tie, embedding_dim=12)
    prompt = torch.tensor([[2, 5, 9, 11, 7], [2, 30, 31, 4, 8]])
    lengths = count_forward_lengths(model)
    cached = model.generate(prompt, max_new_tokens=12, do_sample=False)
    # with the cache, the prompt runs once and each later token is a single step
    assert lengths == [5] + [1] * 11
    lengths.clear()
    rerun = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=False)
    assert lengths == list(range(5, 17))
    assert cached.tolist() == rerun.tolist()


def test_beam_search_reorders_the_cache():
    """Beam search with the cache (states reordered at every step) finds the same beams as rerunning the prefix."""
    model = tiny_lm(GRUForCausalLM)
    prompt = torch.tensor([[2, 5, 9], [2, 17, 3]])
    cached = model.generate(prompt, max_new_tokens=8, num_beams=4, num_return_sequences=2, do_sample=False)
    rerun = model.generate(
        prompt, max_new_tokens=8, num_beams=4, num_return_sequences=2, do_sample=False, use_cache=False
    )
    assert cached.shape == (4, 11)
    assert cached.tolist() == rerun.tolist()


@pytest.mark.parametrize(
    "options",
    [
        dict(do_sample=False),
        dict(do_sample=True, top_k=5, top_p=0.9, temperature=0.7),
        dict(num_beams=3, do_sample=False),
        dict(num_beams=2, do_sample=True),
        dict(do_sample=False, output_hidden_states=True, return_dict_in_generate=True, output_scores=True),
    ],
    ids=["greedy", "sampling", "beams", "beam-sampling", "hidden-states"],
)
def test_what_generate_passes_the_forward_is_accepted(options):
    """The forward refuses unknown keywords; every keyword `generate` passes in each decoding mode is a known one."""
    model = tiny_lm(LSTMForCausalLM)
    prompt = torch.tensor([[0, 2, 5, 9], [2, 17, 3, 4]])
    out = model.generate(prompt, attention_mask=(prompt != 0).long(), max_new_tokens=4, **options)
    sequences = out.sequences if options.get("return_dict_in_generate") else out
    assert sequences.shape == (2, 8)
    if options.get("output_hidden_states"):
        # per step: the embeddings and each of the two layers
        assert all(len(step) == 3 for step in out.hidden_states)


def test_generate_refuses_what_a_recurrent_model_cannot_honour():
    model = tiny_lm(GRUForCausalLM)
    prompt = torch.tensor([[2, 5, 9]])
    with pytest.raises(ValueError, match="output_attentions=True: recurrent models compute no attention"):
        model.generate(prompt, max_new_tokens=2, output_attentions=True, return_dict_in_generate=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments 'position_ids'"):
        model.generate(prompt, max_new_tokens=2, position_ids=torch.arange(3).unsqueeze(0))


@pytest.mark.parametrize("family", [cls for _, cls in FAMILIES], ids=lambda c: c.__name__)
def test_left_padded_batch_generates_as_one_by_one(family):
    model = tiny_lm(family)
    prompts = [[2, 5, 9, 11, 7, 13], [2, 30], [2, 8, 8, 21]]
    width = max(map(len, prompts))
    input_ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    batch = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=10, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False)
        assert batch[row, width - len(prompt) :].tolist() == alone[0].tolist()


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_leaves_the_logits_of_real_tokens_unchanged(side):
    model = tiny_lm(LSTMForCausalLM)
    tokens = [2, 5, 9, 11]
    pad = [0, 0, 0]
    ids = pad + tokens if side == "left" else tokens + pad
    mask = [0] * 3 + [1] * 4 if side == "left" else [1] * 4 + [0] * 3
    with torch.no_grad():
        alone = model(torch.tensor([tokens])).logits[0]
        padded = model(torch.tensor([ids]), attention_mask=torch.tensor([mask])).logits[0]
    real = padded[3:] if side == "left" else padded[:4]
    torch.testing.assert_close(real, alone, atol=1e-5, rtol=1e-5)


def test_continuing_from_a_returned_cache_equals_one_pass():
    model = tiny_lm(LSTMForCausalLM)
    ids = torch.tensor([[2, 5, 9, 11, 7, 13, 6]])
    with torch.no_grad():
        whole = model(ids).logits
        first = model(ids[:, :4], use_cache=True)
        rest = model(ids[:, 4:], cache=first.cache, use_cache=True)
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], 1), whole, atol=1e-5, rtol=1e-5)


def test_loss_is_the_shifted_next_token_cross_entropy_ignoring_minus_100():
    model = tiny_lm(GRUForCausalLM)
    ids = torch.tensor([[2, 5, 9, 11, 7], [2, 6, 8, 0, 0]])
    labels = ids.masked_fill(ids == 0, -100)
    out = model(ids, attention_mask=(ids != 0).long(), labels=labels)
    logits, targets = out.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1)
    keep = targets != -100
    expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(out.loss, expected)


def test_tied_head_shares_the_embedding_and_projects_when_sizes_differ(tmp_path):
    model = tiny_lm(LSTMForCausalLM, tie=True, embedding_dim=12)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    assert model.projection.in_features == 16 and model.projection.out_features == 12
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is LSTMForCausalLM and loaded.lm_head.weight is loaded.get_input_embeddings().weight
    ids = torch.tensor([[2, 5, 9]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    untied = tiny_lm(LSTMForCausalLM, tie=False)
    assert untied.projection is None and untied.lm_head.weight is not untied.get_input_embeddings().weight


def test_bidirectional_config_is_refused():
    with pytest.raises(ValueError, match="bidirectional=False"):
        LSTMForCausalLM(LSTMConfig(vocab_size=VOCAB, bidirectional=True))


def test_char_tokenizer_round_trips_text_with_bos_and_left_padding(tmp_path):
    spec = TokenizerSpec(kind="char", max_tokens=60, lowercase=False, strip_punctuation=False, max_length=32)
    tokenizer = build_tokenizer(spec, TEXTS, language_model=True)
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (
        0,
        1,
        2,
        3,
    )
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    ids = loaded("The film, too long!")["input_ids"]
    assert ids[0] == 2 and len(ids) == 1 + len("The film, too long!")
    assert loaded.decode(ids, skip_special_tokens=True) == "The film, too long!"
    batch = loaded(["ab", "abcd"], padding=True)
    assert batch["attention_mask"][0] == [0, 0, 1, 1, 1]


# --- trained through the recipe pipeline ------------------------------------------------------------------------

CHAR_RECIPE = """
name: tiny_char
model:
  type: gru
  task: causal_lm
  embedding_dim: 16
  hidden_size: 32
  tie_word_embeddings: false
tokenizer:
  kind: char
  max_tokens: 80
  lowercase: true
  strip_punctuation: false
  max_length: 48
data:
  dataset: imdb
  max_train_samples: 60
  max_eval_samples: 8
training:
  max_steps: 40
  per_device_train_batch_size: 16
  learning_rate: 0.01
  logging_steps: 5
  eval_strategy: "no"
  save_strategy: "no"
  metrics: []
  early_stopping_patience: null
"""


@pytest.fixture(scope="module")
def char_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("char")
    (folder / "tiny_char.yaml").write_text(textwrap.dedent(CHAR_RECIPE))
    return train(load_recipe(str(folder / "tiny_char.yaml")), output_dir=folder / "model").output_dir


def test_tiny_char_model_lowers_its_loss_and_reports_bits_per_character(char_model):
    history = json.loads((char_model / "history.json").read_text())
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert losses[-1] < losses[0] - 0.5
    metrics = json.loads((char_model / "metrics.json").read_text())
    vocab = json.loads((char_model / "config.json").read_text())["vocab_size"]
    # better than guessing uniformly among the characters
    assert metrics["bits_per_character"] < torch.log2(torch.tensor(float(vocab))).item()
    assert metrics["perplexity"] == pytest.approx(torch.tensor(metrics["loss"]).exp().item())
    card = (char_model / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "Bits per character" in card
    assert {"modeling_rnn_lm.py", "generation_config.json", "training_curves.png"} <= {
        p.name for p in char_model.iterdir()
    }


def test_pipeline_and_generate_text_from_a_trained_directory(char_model):
    generator = pipeline("text-generation", model=str(char_model))
    out = generator("the movie", max_new_tokens=20, do_sample=False)[0]["generated_text"]
    assert out.startswith("the movie") and len(out) > len("the movie")
    model = AutoModelForCausalLM.from_pretrained(char_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(char_model)
    first, again = (
        list(generate_text(model, tokenizer, ["it was"], max_new_tokens=30, top_k=10, top_p=0.9, seed=3))
        for _ in range(2)
    )
    assert first == again and first[0].startswith("it was")


def test_generate_command_and_its_argument_errors(char_model, capsys):
    assert main(["generate", str(char_model), "--prompt", "the", "--max-new-tokens", "5", "--num-beams", "2"]) == 0
    assert capsys.readouterr().out.startswith("the")
    assert main(["generate", str(char_model), "--prompt", "the", "--greedy", "--temperature", "0.5"]) == 2
    assert "sampling options" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["generate", str(char_model), "--prompt", "the", "--top-p", "0"])
    assert exit.value.code == 2


def test_eval_command_reproduces_the_test_metrics_of_training(char_model, tmp_path, capsys):
    """`hf-rnn eval` on a language model scores the recipe's held-out blocks as training's final evaluation did."""
    assert main(["eval", str(char_model)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    expected = json.loads((char_model / "metrics.json").read_text())
    assert set(expected) == {"loss", "perplexity", "bits_per_character"}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-4), key

    # a text file is scored whole, in blocks of the recipe's max_length, from the column --text-column names
    reviews = [TEXTS[i % 3].lower() for i in range(12)]
    (tmp_path / "reviews.csv").write_text("review\n" + "".join(f'"{text}"\n' for text in reviews))
    assert main(["eval", str(char_model), "--data", str(tmp_path / "reviews.csv"), "--text-column", "review"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert metrics["loss"] != pytest.approx(expected["loss"], abs=1e-3)

    assert main(["eval", str(char_model), "--label-column", "label"]) == 2
    assert "--label-column: a language model is scored on the texts alone" in capsys.readouterr().err
    (tmp_path / "short.csv").write_text("text\ntoo short\n")
    assert main(["eval", str(char_model), "--data", str(tmp_path / "short.csv")]) == 2
    assert "fewer tokens than one block" in capsys.readouterr().err


def test_classifier_commands_refuse_a_language_model(char_model, capsys):
    assert main(["predict", str(char_model), "some text"]) == 2
    assert "hf-rnn generate" in capsys.readouterr().err


def test_summary_command_shows_the_shapes_a_language_model_computes(char_model, capsys):
    """The layers' outputs are measured though a language model runs their cells itself (to carry the state); it
    builds no pooler, so none is listed."""
    assert main(["summary", str(char_model)]) == 0
    out = capsys.readouterr().out
    vocab = json.loads((char_model / "config.json").read_text())["vocab_size"]
    assert re.search(r"backbone\.layers\.0 \(GRU\) +\(batch, time, 32\)", out)
    assert re.search(rf"lm_head \(Linear\) +\(batch, time, {vocab}\)", out)
    assert "pooler" not in out and "?" not in out


def test_summary_counts_a_tied_head_once():
    model = LSTMForCausalLM(LSTMConfig(vocab_size=50, embedding_dim=8, hidden_size=8, tie_word_embeddings=True))
    assert model.lm_head.weight is model.get_input_embeddings().weight
    table = hf_rnn.summary(model, print_fn=None)
    assert sum(row.params for row in table.rows) == table.total_params == sum(p.numel() for p in model.parameters())


def test_push_checks_and_uploads_the_language_model_code(char_model):
    check_model_dir(char_model)
    uploaded = {p.name for p in _files_to_upload(char_model)}
    assert {"modeling_rnn_lm.py", "modeling_rnn.py", "configuration_rnn.py"} <= uploaded
    package_file = Path(hf_rnn.__file__).parent / "modeling_rnn_lm.py"
    assert (char_model / "modeling_rnn_lm.py").read_bytes() == package_file.read_bytes()
    for node in ast.walk(ast.parse(package_file.read_text())):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & FORBIDDEN_MODULES
        elif isinstance(node, ast.ImportFrom):
            # remote code may import only its sibling files relatively, and libraries
            assert node.level == 1 or node.module.split(".")[0] not in FORBIDDEN_MODULES | {"hf_rnn"}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS


def test_remote_code_loads_and_generates_without_hf_rnn(char_model, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(char_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(char_model)
    inputs = tokenizer(["the film", "a"], padding=True, return_tensors="pt")
    expected = model.generate(**inputs, max_new_tokens=15, do_sample=False).tolist()
    got = run_isolated(
        f"""
        import json
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
        path = {str(char_model)!r}
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        inputs = tokenizer(["the film", "a"], padding=True, return_tensors="pt")
        tokens = model.generate(**inputs, max_new_tokens=15, do_sample=False).tolist()
        text = pipeline("text-generation", model=path, trust_remote_code=True)("the", max_new_tokens=5)
        print(json.dumps({{"tokens": tokens, "module": type(model).__module__, "text": text[0]["generated_text"]}}))
        """,
        tmp_path,
    )
    assert not got["module"].startswith("hf_rnn") and got["module"].endswith("modeling_rnn_lm")
    assert got["tokens"] == expected and got["text"].startswith("the")


def test_language_model_recipes_validate_and_refuse_classifier_settings(tmp_path):
    for name in ("imdb_char_lstm", "imdb_word_lstm_lm"):
        assert load_recipe(name).model.task == "causal_lm"
    recipe = textwrap.dedent(CHAR_RECIPE).replace("  metrics: []\n", "")
    recipe = recipe.replace('eval_strategy: "no"', "eval_strategy: epoch").replace(
        'save_strategy: "no"', "save_strategy: epoch"
    )
    (tmp_path / "bad.yaml").write_text(recipe)
    with pytest.raises(RecipeError, match=r"bad\.yaml:\d+: training\.metric_for_best_model .*: loss"):
        load_recipe(str(tmp_path / "bad.yaml"))
    with pytest.raises(RecipeError, match="bidirectional"):
        load_recipe(
            str(tmp_path / "bad.yaml"), overrides=["training.metric_for_best_model=loss", "model.bidirectional=true"]
        )


def test_generation_benchmark_command(tmp_path, capsys):
    assert main(["bench", "--generate", "--quick", "--cells", "lstm,gru", "--output-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "generation.json").read_text())
    assert [row["cell"] for row in report["rows"]] == ["lstm", "gru"]
    for row in report["rows"]:
        assert row["same_tokens"] and row["cached_tokens_per_s"] > 0 and row["rerun_tokens_per_s"] > 0
    assert "rerunning the prefix" in capsys.readouterr().out
    assert main(["bench", "--generate", "--quick", "--cells", "lstm,tcn", "--output-dir", str(tmp_path)]) == 2
