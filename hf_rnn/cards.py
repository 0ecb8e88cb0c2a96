"""Model cards for hf_rnn model directories.

`render_model_card(model_dir)` reads what `hf-rnn train` wrote (`config.json`, `recipe.yaml`, `metrics.json`,
`training_summary.json`, `history.json`, `training_curves.png`) into a [`RecurrentModelCardData`] and renders
`model_cards/model_card_template.md` with `huggingface_hub.ModelCard.from_template`, as setfit and
sentence-transformers do. Every fact on the card comes from those files; what they do not say is left as an HTML
comment for the author to fill in, never guessed. `write_model_card` saves the result as the directory's `README.md`.

Example:

```python
>>> from hf_rnn.cards import write_model_card
>>> write_model_card("hf_rnn_outputs/imdb_bilstm")
PosixPath('hf_rnn_outputs/imdb_bilstm/README.md')
```
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.repocard_data import eval_results_to_model_index
from huggingface_hub.utils import validate_repo_id, yaml_dump
from transformers.modelcard import make_markdown_table, parse_log_history

from .configuration_rnn import RecurrentConfig
from .data import EMBEDDED_DATASETS
from .frontends import FRONTEND_ALIASES
from .model_dir import is_language_model, read_config
from .utils import package_data_dir

TEMPLATE_PATH = package_data_dir("model_cards") / "model_card_template.md"
PLOT_FILE = "training_curves.png"

# front-matter keys, in this order; every other key of `to_dict` only feeds the template
YAML_FIELDS = (
    "language",
    "license",
    "library_name",
    "tags",
    "datasets",
    "metrics",
    "pipeline_tag",
    "base_model",
    "model-index",
)
# embedded datasets whose rows are those of a Hub dataset (see their `splits_note`), for the `datasets` metadata
_HUB_DATASET_IDS = {
    "imdb": "stanfordnlp/imdb",
    "rotten_tomatoes": "cornell-movie-review-data/rotten_tomatoes",
    "trec": "CogComp/trec",
}
_LOCAL_DATA_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
_CELL_NAMES = {"rnn": "simple RNN", "lstm": "LSTM", "gru": "GRU"}
_METRIC_NAMES = {
    "accuracy": "Accuracy",
    "f1": "F1",
    "f1_macro": "F1 (macro)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "roc_auc": "ROC AUC",
    "loss": "Loss",
    "perplexity": "Perplexity",
    "bits_per_character": "Bits per character",
    "bits_per_token": "Bits per token",
}
_VERSION_NAMES = {"hf_rnn": "hf-rnn", "transformers": "Transformers", "torch": "PyTorch"}


def _table(rows: list[dict[str, Any]]) -> str:
    """A left-aligned markdown table (transformers' `make_markdown_table` centres every column)."""
    return make_markdown_table(rows).replace(":|", "-|").rstrip("\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _hub_id(name: str | None) -> str | None:
    """`name` if it can be a Hub repo id and is not a local path, else None."""
    if not name or Path(name).exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


@dataclass(eq=False)
class RecurrentModelCardData(ModelCardData):
    """Everything the model card of an hf_rnn model shows: what the user gives, and what the training run wrote.

    `to_dict()` formats it for the template (tables are built here, not in Jinja) and `to_yaml()` writes the front
    matter: `library_name`, `license`, `language`, `tags`, `datasets`, `metrics`, `pipeline_tag`, `base_model` (for
    pretrained frontends) and a `model-index` with the test metrics.

    Args:
        language (`str` or `list[str]`, *optional*):
            Language(s) of the training texts, e.g. `"en"` (the recipe's `hub.language`).
        license (`str`, *optional*):
            License of the model, e.g. `"apache-2.0"` (the recipe's `hub.license`).
        model_id (`str`, *optional*):
            Hub repo id, e.g. `"user/imdb-bilstm"`, used in the usage snippets; unknown before the first push.
        model_name (`str`, *optional*):
            Title of the card and name in the `model-index`; defaults to the repo name or the recipe name.
        dataset_id (`str`, *optional*):
            Hub dataset id of the training data, for the `datasets` metadata.
        dataset_name (`str`, *optional*):
            Readable name of the training data; defaults to the recipe's `data.dataset`.
        tags (`list[str]`, *optional*):
            Extra tags; `hf-rnn` and the cell type are always added.

    Example:

    ```python
    >>> from hf_rnn.cards import RecurrentModelCardData
    >>> card_data = RecurrentModelCardData.from_model_dir("hf_rnn_outputs/imdb_bilstm", model_id="user/imdb-bilstm")
    >>> card_data.to_dict()["pipeline_tag"]
    'text-classification'
    ```
    """

    # given by the user
    language: str | list[str] | None = None
    license: str | None = None
    model_id: str | None = None
    model_name: str | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    tags: list[str] = field(default_factory=list)

    # read from the files the training run wrote, by `from_model_dir`
    config: RecurrentConfig | None = field(default=None, init=False)
    recipe_yaml: str | None = field(default=None, init=False)
    test_metrics: dict[str, float] = field(default_factory=dict, init=False)
    training_summary: dict[str, Any] = field(default_factory=dict, init=False)
    log_history: list[dict[str, Any]] = field(default_factory=list, init=False)
    plot: str | None = field(default=None, init=False)

    # the same for every hf_rnn model: transformers loads it (natively after `import hf_rnn`, else as remote code)
    library_name: str = field(default="transformers", init=False)

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, model_id: str | None = None) -> "RecurrentModelCardData":
        """Card data for a model directory written by `hf-rnn train`.

        Only `config.json` is required; each other file that is missing drops its part of the card. `license` and
        `language` come from the recipe's `hub` section, `model_id` from the argument or `hub.repo_id`.

        Raises:
            `FileNotFoundError` or `ValueError`: `model_dir` has no `config.json`, or it is not a valid hf_rnn
                model's (see [`hf_rnn.model_dir.read_config`]).
        """
        model_dir = Path(model_dir)
        config = read_config(model_dir)
        recipe_path = model_dir / "recipe.yaml"
        recipe_yaml = recipe_path.read_text(encoding="utf-8") if recipe_path.is_file() else None
        recipe = yaml.safe_load(recipe_yaml) if recipe_yaml else {}
        hub, data = recipe.get("hub") or {}, recipe.get("data") or {}
        dataset = data.get("dataset")
        model_id = model_id or hub.get("repo_id")

        card_data = cls(
            language=hub.get("language"),
            license=hub.get("license"),
            model_id=model_id,
            model_name=model_id.split("/")[-1] if model_id else recipe.get("name") or model_dir.resolve().name,
            dataset_id=_dataset_hub_id(dataset),
            dataset_name=dataset,
        )
        card_data.config = config
        card_data.recipe_yaml = recipe_yaml
        card_data.test_metrics = _read_json(model_dir / "metrics.json") or {}
        card_data.training_summary = _read_json(model_dir / "training_summary.json") or {}
        card_data.log_history = _read_json(model_dir / "history.json") or []
        card_data.plot = PLOT_FILE if (model_dir / PLOT_FILE).is_file() else None
        return card_data

    @property
    def recipe(self) -> dict[str, Any]:
        return (yaml.safe_load(self.recipe_yaml) if self.recipe_yaml else None) or {}

    @property
    def is_token_classifier(self) -> bool:
        return any(name.endswith("ForTokenClassification") for name in self.config.architectures or [])

    @property
    def is_language_model(self) -> bool:
        return is_language_model(self.config)

    @property
    def pipeline_tag(self) -> str:
        if self.is_language_model:
            return "text-generation"
        return "token-classification" if self.is_token_classifier else "text-classification"

    @property
    def label_names(self) -> list[str]:
        if self.is_language_model:
            return []
        return [self.config.id2label[i] for i in sorted(self.config.id2label)]

    @property
    def base_model(self) -> str | None:
        """Hub id of the pretrained encoder of a frontend model (None for a local encoder or no frontend)."""
        if self.config is None or self.config.frontend == "none":
            return None
        pretrained = (self.recipe.get("model") or {}).get("frontend_pretrained")
        return FRONTEND_ALIASES.get(pretrained) or _hub_id(pretrained)

    def test_eval_results(self) -> list[EvalResult]:
        """The test metrics as `EvalResult`s, one per entry of metrics.json (empty without data to name)."""
        if not self.test_metrics or not self.dataset_name:
            return []
        data = self.recipe.get("data") or {}
        return [
            EvalResult(
                task_type=self.pipeline_tag,
                task_name=self.pipeline_tag.replace("-", " ").capitalize(),
                dataset_type=self.dataset_id or self.dataset_name,
                dataset_name=self.dataset_name,
                dataset_config=data.get("config_name"),
                dataset_split=data.get("test_split") or "test",
                metric_type=key,
                metric_name=f"Test {_METRIC_NAMES.get(key, key)}",
                metric_value=value,
            )
            for key, value in self.test_metrics.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """Front-matter fields plus the template's variables, with every table formatted."""
        if self.config is None:
            raise ValueError("RecurrentModelCardData has no model config; build it with from_model_dir(model_dir).")
        config, recipe, summary = self.config, self.recipe, self.training_summary
        cell = config.cell_type
        trained_metrics = (recipe.get("training") or {}).get("metrics") or []
        eval_results = self.test_eval_results()
        return {
            # front matter
            "language": self.language,
            "license": self.license,
            "library_name": self.library_name,
            "tags": list(dict.fromkeys(["hf-rnn", cell, *self.tags])),
            "datasets": [self.dataset_id] if self.dataset_id else None,
            # metric ids as the recipe names them (`f1`), for those in metrics.json (`f1_macro`)
            "metrics": [m for m in trained_metrics if any(k == m or k.startswith(f"{m}_") for k in self.test_metrics)]
            or None,
            "pipeline_tag": self.pipeline_tag,
            "base_model": self.base_model,
            "model-index": eval_results_to_model_index(self.model_name, eval_results) if eval_results else None,
            # template variables
            "model_name": self.model_name,
            "model_id": self.model_id,
            "model_ref": self.model_id or "path/to/model",
            "model_type": config.model_type,
            "auto_class": "AutoModelFor"
            + (
                "CausalLM"
                if self.is_language_model
                else "TokenClassification"
                if self.is_token_classifier
                else "SequenceClassification"
            ),
            "summary": self._summary(),
            "description": recipe.get("description") or None,
            "architecture_table": _table([{"Property": k, "Value": v} for k, v in self._architecture_rows()]),
            "parameters_line": self._parameters_line(),
            "dataset": self.dataset_name,
            **self._data_fields(),
            "recipe_yaml": self.recipe_yaml.rstrip("\n") if self.recipe_yaml else None,
            "training_line": self._training_line(),
            "test_split": self._test_split(),
            "metrics_table": _table(
                [{"Metric": _METRIC_NAMES.get(k, k), "Value": f"{v:.4f}"} for k, v in self.test_metrics.items()]
            )
            or None,
            "training_log_table": self._training_log_table(),
            "plot": self.plot,
            "limitations": "\n".join(f"- {line}" for line in self._limitations()),
            "versions_list": "\n".join(
                f"- {_VERSION_NAMES.get(name, name)}: {version}"
                for name, version in (summary.get("versions") or {}).items()
            )
            or None,
        }

    def to_yaml(self, line_break: str | None = None) -> str:
        """The YAML front matter: only `YAML_FIELDS`, in that order, without empty values."""
        data = self.to_dict()
        front_matter = {key: data[key] for key in YAML_FIELDS if data.get(key) is not None}
        return yaml_dump(front_matter, sort_keys=False, line_break=line_break).strip()

    # --- pieces of the card ---------------------------------------------------------------------------------

    def _summary(self) -> str:
        config = self.config
        directions = "bidirectional" if config.bidirectional else "unidirectional"
        kind = "token classifier" if self.is_token_classifier else "text classifier"
        labels = ", ".join(f"`{name}`" for name in self.label_names)
        text = (
            f"A {directions} {config.num_layers}-layer {_CELL_NAMES[config.cell_type]} {kind} with "
            f"{len(self.label_names)} labels ({labels}), trained with hf-rnn"
        )
        if self.is_language_model:
            unit = "character" if (self.recipe.get("tokenizer") or {}).get("kind") == "char" else "token"
            text = (
                f"A {config.num_layers}-layer {_CELL_NAMES[config.cell_type]} language model that writes text one "
                f"{unit} at a time, trained with hf-rnn"
            )
        if self.dataset_name:
            text += f" on {self.dataset_name}"
        if config.frontend != "none":
            encoder = f"`{self.base_model}`" if self.base_model else "a pretrained"
            text += f", reading the outputs of {encoder} {config.frontend_config.model_type} encoder"
        return text + "."

    def _architecture_rows(self) -> list[tuple[str, str]]:
        config = self.config
        cell = _CELL_NAMES[config.cell_type]
        if config.cell_type == "rnn":
            cell += f" (`{config.nonlinearity}`)"
        if config.frontend == "none":
            inputs = f"token embedding trained from scratch, {config.vocab_size:,} tokens x {config.embedding_dim}"
        else:
            encoder = config.frontend_config
            name = f"`{self.base_model}`" if self.base_model else "<!-- encoder name unknown -->"
            inputs = (
                f"{encoder.model_type} encoder {name}: {encoder.num_hidden_layers} layers, hidden size "
                f"{encoder.hidden_size}, `{config.frontend_output}` outputs, frozen: `{config.freeze_frontend}`"
            )
        if self.is_language_model:
            tied = "tied to the input embeddings" if config.tie_word_embeddings else "untied"
            head = f"linear -> {config.vocab_size:,} next-token logits ({tied})"
        elif config.classifier_hidden_sizes:
            sizes = " -> ".join(str(size) for size in config.classifier_hidden_sizes)
            head = f"dense {sizes} (`{config.classifier_activation}`), then linear -> {config.num_labels} logits"
        else:
            head = f"linear -> {config.num_labels} logits"
        rows = [
            ("Model type", f"`{config.model_type}` (`{(config.architectures or ['?'])[0]}`)"),
            ("Recurrent cell", cell),
            ("Layers", str(config.num_layers)),
            (
                "Directions",
                f"bidirectional, merged by `{config.merge_mode}`" if config.bidirectional else "forward only",
            ),
            ("Hidden size", f"{config.hidden_size} per direction"),
            ("Input", inputs),
            ("Pooling", f"`{config.pooling}`"),
            ("Classifier head", head),
            (
                "Dropout",
                f"embeddings {config.embedding_dropout:g}, between layers {config.dropout:g}, "
                f"head {config.classifier_dropout:g}",
            ),
            ("Labels", ", ".join(f"`{name}`" for name in self.label_names)),
        ]
        if self.is_language_model:
            # no pooling and no labels: the head reads every position
            rows = [row for row in rows if row[0] not in ("Pooling", "Labels")]
            rows = [("Next-token head", head) if row[0] == "Classifier head" else row for row in rows]
        tokenizer = self.recipe.get("tokenizer") or {}
        if "max_length" in tokenizer:
            max_length = tokenizer["max_length"]
            rows.append(("Max input length", f"{max_length} tokens" if max_length else "no limit"))
        return rows

    def _parameters_line(self) -> str | None:
        total, trainable = self.training_summary.get("total_params"), self.training_summary.get("trainable_params")
        if total is None or trainable is None:
            return None
        return f"{total:,} in total: {trainable:,} trainable, {total - trainable:,} frozen."

    def _data_fields(self) -> dict[str, Any]:
        data = self.recipe.get("data") or {}
        name = self.dataset_name
        embedded = EMBEDDED_DATASETS.get(name)
        if embedded is not None:
            line = f"`{name}`, read offline from the `{embedded.package}` package."
        elif name and name.endswith(_LOCAL_DATA_SUFFIXES):
            line = f"The local file `{name}`."
        elif name:
            line = f"The Hub dataset [`{name}`](https://huggingface.co/datasets/{name})"
            line += f" (configuration `{data['config_name']}`)." if data.get("config_name") else "."
        else:
            line = None
        summary = self.training_summary
        sizes = [(split, summary.get(f"{split}_samples")) for split in ("train", "validation", "test")]
        # a language model trains on blocks of max_length tokens cut from the concatenated texts
        unit = "Examples"
        if self.is_language_model:
            unit = f"Blocks of {(self.recipe.get('tokenizer') or {}).get('max_length')} tokens"
        split_rows = [{"Split": split, unit: f"{size:,}"} for split, size in sizes if size is not None]
        return {
            "dataset_line": line,
            "dataset_description": embedded.description if embedded else None,
            "dataset_source": embedded.license if embedded else None,
            "splits_note": embedded.splits_note if embedded else None,
            "split_table": _table(split_rows) or None,
        }

    def _training_line(self) -> str | None:
        summary = self.training_summary
        if summary.get("epochs_completed") is None:
            return None
        line = f"Training ran for {summary['epochs_completed']:g} epochs"
        if summary.get("global_steps") is not None:
            line += f" ({summary['global_steps']:,} optimizer steps)"
        if summary.get("train_runtime_s") is not None:
            line += f" in {summary['train_runtime_s']:,.1f} s"
        return line + "."

    def _test_split(self) -> str:
        test_samples = self.training_summary.get("test_samples")
        name = (self.recipe.get("data") or {}).get("test_split") or "test"
        return f"`{name}` split" + (f" ({test_samples:,} examples)" if test_samples is not None else "")

    def _training_log_table(self) -> str | None:
        _, lines, _ = parse_log_history(self.log_history)
        return _table(lines) if lines else None

    def _limitations(self) -> list[str]:
        config, summary = self.config, self.training_summary
        tokenizer = self.recipe.get("tokenizer") or {}
        train_samples = summary.get("train_samples")
        lines = []
        if config.frontend == "none":
            seen = f"{train_samples:,} training examples" if train_samples is not None else "its training data"
            lines.append(f"Trained from scratch: the model knows only what it learned from {seen}.")
        if tokenizer.get("pretrained"):
            lines.append(f"Texts are split by the pretrained tokenizer `{tokenizer['pretrained']}`.")
        elif tokenizer.get("kind") == "char":
            lines.append(
                f"The tokenizer is a character vocabulary of {config.vocab_size:,} symbols learned from the training "
                "texts: rarer characters become `[UNK]`."
            )
        elif tokenizer.get("kind") == "word_level":
            lines.append(
                f"The tokenizer is a word-level vocabulary of {config.vocab_size:,} tokens learned from the training "
                "texts: every other word becomes `[UNK]`."
            )
        elif tokenizer.get("kind"):
            lines.append(
                f"The tokenizer is a {tokenizer['kind']} subword vocabulary of {config.vocab_size:,} tokens learned "
                "from the training texts."
            )
        if self.is_language_model:
            lines.append(
                f"Trained on blocks of {tokenizer.get('max_length')} tokens: it has not learned to use more context "
                "than that, and it writes text that resembles its training data, errors and biases included."
            )
        else:
            if tokenizer.get("max_length"):
                lines.append(
                    f"Inputs are truncated to {tokenizer['max_length']} tokens; the rest of a text is not read."
                )
            labels = ", ".join(f"`{name}`" for name in self.label_names)
            lines.append(f"It predicts only the labels {labels}; any input gets one of them.")
        if self.language:
            languages = self.language if isinstance(self.language, str) else ", ".join(self.language)
            lines.append(f"Trained on `{languages}` text; other languages are out of scope.")
        lines.append(
            "Loading without hf_rnn installed needs `trust_remote_code=True`, which runs this repository's "
            + ("`modeling_rnn_lm.py`, " if self.is_language_model else "")
            + "`modeling_rnn.py` and `configuration_rnn.py`."
        )
        return lines


def _dataset_hub_id(dataset: str | None) -> str | None:
    """The Hub id of the recipe's `data.dataset`: a Hub name as is, an embedded dataset's source if it has one."""
    if dataset in EMBEDDED_DATASETS:
        return _HUB_DATASET_IDS.get(dataset)
    if not dataset or dataset.endswith(_LOCAL_DATA_SUFFIXES):
        return None
    return _hub_id(dataset)


def render_model_card(model_dir: str | Path, repo_id: str | None = None) -> str:
    """The model card (README.md content) of an hf_rnn model directory.

    Args:
        model_dir (`str` or `Path`): a directory written by `hf-rnn train` (at least `config.json`).
        repo_id (`str`, *optional*): the Hub repo the card is for, shown in the usage snippets; defaults to the
            recipe's `hub.repo_id`.

    Raises:
        `ValueError`: `model_dir` is not an hf_rnn model directory.
    """
    card_data = RecurrentModelCardData.from_model_dir(model_dir, model_id=repo_id)
    return ModelCard.from_template(card_data, template_path=str(TEMPLATE_PATH)).content


def write_model_card(model_dir: str | Path, repo_id: str | None = None) -> Path:
    """Renders the card of `model_dir` (see [`render_model_card`]) into `model_dir/README.md` and returns its path."""
    path = Path(model_dir) / "README.md"
    path.write_text(render_model_card(model_dir, repo_id=repo_id), encoding="utf-8")
    return path


__all__ = ["RecurrentModelCardData", "render_model_card", "write_model_card"]
