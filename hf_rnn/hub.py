"""Pushing hf_rnn model directories to the Hugging Face Hub.

`push_model` uploads a directory written by `hf-rnn train` in one commit: the weights (safetensors), `config.json`
with its `auto_map`, the `modeling_rnn.py` / `configuration_rnn.py` sources that `trust_remote_code=True` runs (and
`modeling_rnn_lm.py` for a language model), the tokenizer, metrics, history, recipe, training-curve plot and the
model card. It does not go through `PreTrainedModel.push_to_hub`, which writes a generic README.md over the card: the
card travels in the same commit and is read back from the Hub afterwards to check that it is the one shown.

Tokens come from huggingface_hub's usual sources (the `token` argument, `HF_TOKEN`, `hf auth login`); they are never
logged, never written into a file, and a file that already holds the token is refused before anything is uploaded.

Example:

```python
>>> from hf_rnn.hub import push_model
>>> push_model("hf_rnn_outputs/imdb_bilstm", "user/imdb-bilstm", private=True)
'https://huggingface.co/user/imdb-bilstm'
```
"""

import json
import logging
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token

from . import __version__
from .cards import render_model_card, write_model_card
from .model_dir import read_config

logger = logging.getLogger(__name__)

# what a model directory needs to load anywhere: config (with auto_map), remote code, tokenizer; weights come apart
# because a sharded checkpoint has an index instead of model.safetensors
REMOTE_CODE_FILES = ("configuration_rnn.py", "modeling_rnn_embeddings.py", "modeling_rnn.py")
# the language models' remote code (it imports modeling_rnn.py), in the directories of language models only
CAUSAL_LM_CODE_FILE = "modeling_rnn_lm.py"
REQUIRED_FILES = ("config.json", *REMOTE_CODE_FILES, "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
AUTO_CLASSES = ("AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoModelForTokenClassification")
# only top-level files with these suffixes are uploaded: never subfolders (checkpoints/, runs/), hidden files, or
# pickles such as training_args.bin; of the Python files only the remote code (`REMOTE_CODE_FILES`)
UPLOAD_SUFFIXES = (".json", ".safetensors", ".py", ".png", ".yaml", ".md", ".txt", ".model")
# files too large or too binary to be worth searching for a pasted token
_BINARY_SUFFIXES = (".safetensors", ".png", ".model")
CARD_FILE = "README.md"


def check_model_dir(model_dir: str | Path) -> Path:
    """Checks that `model_dir` holds a complete hf_rnn model and returns it as a `Path`.

    Raises:
        `ValueError`: naming every missing file, or what is wrong with `config.json`.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ValueError(f"{model_dir} is not a directory; pass the output directory of `hf-rnn train`.")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if not any((model_dir / name).is_file() for name in WEIGHT_FILES):
        missing.append(WEIGHT_FILES[0])
    if missing:
        raise ValueError(
            f"{model_dir} is not an hf_rnn model directory: missing {', '.join(missing)}. Push the output directory "
            "of `hf-rnn train`, or save the model and its tokenizer there with `save_pretrained`."
        )
    read_config(model_dir)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    required = list(AUTO_CLASSES)
    if any(name.endswith("ForCausalLM") for name in config.get("architectures") or []):
        required.append("AutoModelForCausalLM")
        if not (model_dir / CAUSAL_LM_CODE_FILE).is_file():
            raise ValueError(
                f"{model_dir} holds a language model but not its remote code {CAUSAL_LM_CODE_FILE}; save it again "
                "with hf_rnn's save_pretrained."
            )
    absent = [name for name in required if name not in (config.get("auto_map") or {})]
    if absent:
        raise ValueError(
            f"{model_dir / 'config.json'}: auto_map lacks {', '.join(absent)}, so the model would not load with "
            "trust_remote_code=True; save it again with hf_rnn's save_pretrained."
        )
    return model_dir


def _files_to_upload(model_dir: Path) -> list[Path]:
    """The files of `model_dir` that go to the Hub, README.md aside (see `UPLOAD_SUFFIXES`)."""
    return sorted(
        path
        for path in model_dir.iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and path.suffix in UPLOAD_SUFFIXES
        and (path.suffix != ".py" or path.name in (*REMOTE_CODE_FILES, CAUSAL_LM_CODE_FILE))
        and path.name != CARD_FILE
    )


def _check_remote_code(model_dir: Path) -> None:
    """Refuses remote code that is not hf_rnn's own: whoever loads the repo with `trust_remote_code=True` runs it."""
    package_dir = Path(__file__).parent
    present = [name for name in (*REMOTE_CODE_FILES, CAUSAL_LM_CODE_FILE) if (model_dir / name).is_file()]
    for name in present:
        if (model_dir / name).read_bytes() != (package_dir / name).read_bytes():
            raise ValueError(
                f"{model_dir / name} differs from the installed hf_rnn {__version__}'s own {name}, and the Hub would "
                "run it with trust_remote_code=True; re-save the model with this hf_rnn (`save_pretrained` writes "
                "the package's copy), or push a deliberate change yourself with huggingface_hub."
            )


def _card_to_upload(model_dir: Path, repo_id: str) -> str:
    """The card to push: regenerated for `repo_id` when missing or as hf_rnn wrote it, kept as is when edited.

    A card hf_rnn wrote and nobody changed is exactly what `render_model_card` gives again; it is rewritten with
    the repo id in its usage snippets. A card that differs was edited (or written by another version): it is the
    author's and is uploaded unchanged.
    """
    readme = model_dir / CARD_FILE
    if readme.is_file():
        current = readme.read_text(encoding="utf-8")
        if current != render_model_card(model_dir):
            return current
    return write_model_card(model_dir, repo_id=repo_id).read_text(encoding="utf-8")


def _refuse_token_in_files(files: list[Path], card: str, token: str | None) -> None:
    """Stops a push that would publish the token (say, pasted into recipe.yaml); the message never shows it."""
    if not token:
        return
    # the files first: the card quotes recipe.yaml, and the message should name the file to fix
    for path in files:
        if path.suffix not in _BINARY_SUFFIXES and token.encode() in path.read_bytes():
            raise ValueError(f"{path} contains your Hugging Face token; remove it before pushing.")
    if token in card:
        raise ValueError(f"{CARD_FILE} contains your Hugging Face token; remove it before pushing.")


def push_model(
    model_dir: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Uploads an hf_rnn model directory to the Hub in a single commit, model card included, and checks the card.

    Args:
        model_dir (`str` or `Path`):
            A directory written by `hf-rnn train`.
        repo_id (`str`):
            `user/name` or `org/name`; the repo is created if needed.
        private (`bool`, *optional*, defaults to `False`):
            Create the repo private. An existing public repo is refused rather than silently kept public.
        revision (`str`, *optional*):
            Branch to push to; created from `main` if it does not exist. Defaults to `main`.
        token (`str`, *optional*):
            A Hub token with write access; defaults to huggingface_hub's (`HF_TOKEN`, `hf auth login`).
        commit_message (`str`, *optional*):
            Defaults to "Upload <model_dir name> with hf-rnn".

    Returns:
        `str`: the URL of the repo.

    Raises:
        `ValueError`: `model_dir` is not a complete hf_rnn model directory, its remote code is not the installed
            hf_rnn's own, a file in it holds the token, or `private=True` for an existing public repo.
        `RuntimeError`: the README.md on the Hub after the push is not the card that was uploaded.
        `huggingface_hub.errors.HfHubHTTPError`: the Hub refused a request (no or wrong token, no write access).
    """
    model_dir = check_model_dir(model_dir)
    _check_remote_code(model_dir)
    card = _card_to_upload(model_dir, repo_id)
    files = _files_to_upload(model_dir)
    _refuse_token_in_files(files, card, token or get_token())

    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    if private and not api.repo_info(repo_id).private:
        raise ValueError(
            f"{repo_id} already exists and is public; make it private on the Hub or push without private."
        )
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)

    operations = [CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=path) for path in files]
    # the card is part of the same commit, so no other upload step can replace it with a generic one
    operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
    logger.info("Pushing %d files from %s to %s (%s)", len(operations), model_dir, repo_id, revision or "main")
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or f"Upload {model_dir.resolve().name} with hf-rnn",
        revision=revision,
    )
    _check_card_on_hub(api, repo_id, revision, card)
    logger.info("Pushed %s", commit.commit_url)
    return str(repo_url)


def _check_card_on_hub(api: HfApi, repo_id: str, revision: str | None, card: str) -> None:
    """Reads README.md back from the branch just pushed and compares it with the card that was uploaded."""
    with tempfile.TemporaryDirectory() as cache_dir:
        path = api.hf_hub_download(repo_id, CARD_FILE, revision=revision, cache_dir=cache_dir)
        on_hub = Path(path).read_text(encoding="utf-8")
    if on_hub != card:
        raise RuntimeError(
            f"The {CARD_FILE} of {repo_id} ({revision or 'main'}) on the Hub is not the model card hf-rnn uploaded; "
            "something else wrote it after this push. Push again to restore the card."
        )


__all__ = ["check_model_dir", "push_model"]
