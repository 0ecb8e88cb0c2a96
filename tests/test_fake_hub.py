"""Round trips through huggingface_hub / transformers against the in-memory FakeHub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FAKE_TOKEN, FakeHub, git_blob_sha
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    create_repo,
    hf_hub_download,
    list_repo_files,
    snapshot_download,
    upload_folder,
)
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

README = """---
license: apache-2.0
library_name: hf-rnn
tags:
- text-classification
- rnn
---

# Tiny test model

Some text.
"""
TEXT = "hello fake hub\nline two: ünïcödé\n"
BINARY = bytes(range(256)) * 3


def _make_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text(TEXT, encoding="utf-8")
    (root / "sub" / "weights.bin").write_bytes(BINARY)
    (root / "README.md").write_text(README, encoding="utf-8")
    return root


def _push_folder(tmp_path: Path, repo_id: str) -> str:
    """Create the repo, upload the sample folder and return the commit sha."""
    create_repo(repo_id, exist_ok=True)
    info = upload_folder(repo_id=repo_id, folder_path=_make_folder(tmp_path / "src"), commit_message="first")
    return info.oid


def test_endpoint_constants_point_at_fake(fake_hub: FakeHub) -> None:
    from huggingface_hub import constants, hf_api

    assert os.environ["HF_ENDPOINT"] == fake_hub.url == constants.ENDPOINT == hf_api.api.endpoint
    assert constants.HUGGINGFACE_CO_URL_TEMPLATE.startswith(fake_hub.url + "/")
    assert constants.HF_HUB_CACHE.startswith(fake_hub.hf_home or "<unset>")
    assert os.environ["HF_TOKEN"] == FAKE_TOKEN and "HF_HUB_OFFLINE" not in os.environ


def test_upload_folder_and_download_round_trip(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo_id = "fake-user/round-trip"
    url = create_repo(repo_id, private=False, exist_ok=True)
    assert url.repo_id == repo_id and url.startswith(fake_hub.url)
    assert create_repo(repo_id, exist_ok=True).repo_id == repo_id  # 409 -> exist_ok
    with pytest.raises(HfHubHTTPError) as exc:
        create_repo(repo_id)
    assert exc.value.response.status_code == 409

    sha = upload_folder(repo_id=repo_id, folder_path=_make_folder(tmp_path / "src")).oid
    assert len(sha) == 40 and fake_hub.repo(repo_id).branches["main"] == sha

    assert Path(hf_hub_download(repo_id, "notes.txt")).read_text(encoding="utf-8") == TEXT
    assert Path(hf_hub_download(repo_id, "sub/weights.bin")).read_bytes() == BINARY
    assert Path(hf_hub_download(repo_id, "notes.txt", revision=sha)).read_text(encoding="utf-8") == TEXT

    snapshot = Path(snapshot_download(repo_id))
    assert snapshot.name == sha
    assert (snapshot / "sub" / "weights.bin").read_bytes() == BINARY
    assert (snapshot / "README.md").read_text(encoding="utf-8") == README

    # The Hub's initial commit adds .gitattributes.
    expected = [".gitattributes", "README.md", "notes.txt", "sub/weights.bin"]
    assert sorted(list_repo_files(repo_id)) == expected
    api = HfApi()
    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == sha and info.private is False
    assert sorted(s.rfilename for s in info.siblings or []) == expected
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    tree = {e.path: e for e in api.list_repo_tree(repo_id, recursive=True)}
    assert set(tree) == {*expected, "sub"}
    assert tree["sub/weights.bin"].size == len(BINARY)  # type: ignore[union-attr]
    assert tree["sub/weights.bin"].blob_id == git_blob_sha(BINARY)  # type: ignore[union-attr]
    assert [e.path for e in api.list_repo_tree(repo_id, path_in_repo="sub")] == ["sub/weights.bin"]

    assert fake_hub.file(repo_id, "sub/weights.bin") == BINARY
    assert fake_hub.tokens_seen() == {FAKE_TOKEN}
    assert all(r.authorization == f"Bearer {FAKE_TOKEN}" for r in fake_hub.requests)
    assert fake_hub.unhandled == []


def test_delete_commit_keeps_history(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo_id = "fake-user/history"
    first = _push_folder(tmp_path, repo_id)
    api = HfApi()
    second = api.create_commit(
        repo_id,
        operations=[
            CommitOperationDelete("notes.txt"),
            CommitOperationAdd("added.txt", b"new file"),
            CommitOperationAdd("sub/weights.bin", b"changed"),
        ],
        commit_message="second",
    ).oid
    assert second != first

    assert "notes.txt" not in list_repo_files(repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "notes.txt")
    assert Path(hf_hub_download(repo_id, "notes.txt", revision=first)).read_text(encoding="utf-8") == TEXT
    assert Path(hf_hub_download(repo_id, "sub/weights.bin", revision=first)).read_bytes() == BINARY
    assert Path(hf_hub_download(repo_id, "sub/weights.bin")).read_bytes() == b"changed"
    assert "notes.txt" in list_repo_files(repo_id, revision=first)
    assert [c.title for c in api.list_repo_commits(repo_id)] == ["second", "first", "initial commit"]

    # Re-uploading unchanged content is a no-op: preupload returns the remote oid and the client skips the commit.
    assert api.upload_file(path_or_fileobj=b"new file", path_in_repo="added.txt", repo_id=repo_id).oid == second
    assert fake_hub.unhandled == []


def test_missing_things_raise_hub_errors(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo_id = "fake-user/missing"
    _push_folder(tmp_path, repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.txt")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("fake-user/does-not-exist", "README.md")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("fake-user/does-not-exist")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "notes.txt", revision="no-such-branch")


def test_branches_and_tags(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo_id = "fake-user/branches"
    main_sha = _push_folder(tmp_path, repo_id)
    api = HfApi()
    dev_sha = api.upload_file(path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id=repo_id, revision="dev").oid
    assert "dev.txt" not in list_repo_files(repo_id)
    assert {"dev.txt", "notes.txt"} <= set(list_repo_files(repo_id, revision="dev"))
    assert Path(hf_hub_download(repo_id, "dev.txt", revision="dev")).read_bytes() == b"dev only"

    api.create_branch(repo_id, branch="release", revision=main_sha)
    api.create_branch(repo_id, branch="release", exist_ok=True)
    api.create_tag(repo_id, tag="v1", revision="dev")
    refs = api.list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": main_sha, "dev": dev_sha, "release": main_sha}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", dev_sha)]
    assert Path(hf_hub_download(repo_id, "dev.txt", revision="v1")).read_bytes() == b"dev only"

    fake_hub.auto_create_branches = False  # the real Hub refuses commits to unknown branches
    try:
        with pytest.raises(RevisionNotFoundError):
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, revision="ghost")
    finally:
        fake_hub.auto_create_branches = True


def test_model_card_load(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo_id = "fake-user/card"
    _push_folder(tmp_path, repo_id)
    card = ModelCard.load(repo_id)
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "hf-rnn"
    assert card.data.tags == ["text-classification", "rnn"]
    assert "# Tiny test model" in card.text
    # /api/validate-yaml rejects broken front matter before anything is committed.
    with pytest.raises(ValueError, match="Invalid metadata"):
        HfApi().upload_file(path_or_fileobj=b"---\nlicense: [\n---\n", path_in_repo="README.md", repo_id=repo_id)
    assert fake_hub.file(repo_id, "README.md") == README.encode()


def test_auth_required_for_writes_and_private_repos(fake_hub: FakeHub, tmp_path: Path) -> None:
    anonymous = HfApi(token=False)
    with pytest.raises(HfHubHTTPError) as exc:
        anonymous.create_repo("fake-user/anon")
    assert exc.value.response.status_code == 401

    create_repo("fake-user/secret", private=True)
    HfApi().upload_file(path_or_fileobj=b"s3cret", path_in_repo="s.txt", repo_id="fake-user/secret")
    assert HfApi().model_info("fake-user/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info("fake-user/secret")
    with pytest.raises(HfHubHTTPError) as exc:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="fake-user/secret")
    assert exc.value.response.status_code == 401
    assert None in fake_hub.tokens_seen()


def test_transformers_push_and_load(fake_hub: FakeHub, tmp_path: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=99
    )
    model = BertModel(config).eval()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "fake", "hub", "##s"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))

    repo_id = "fake-user/tiny-bert"
    model.push_to_hub(repo_id)
    tokenizer.push_to_hub(repo_id)
    assert {"config.json", "model.safetensors", "README.md", "tokenizer_config.json"} <= set(fake_hub.files(repo_id))

    assert AutoConfig.from_pretrained(repo_id).hidden_size == 32
    loaded = AutoModel.from_pretrained(repo_id).eval()
    expected, actual = model.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).last_hidden_state, model(ids).last_hidden_state)

    reloaded_tokenizer = AutoTokenizer.from_pretrained(repo_id)
    assert reloaded_tokenizer("hello fake hubs")["input_ids"] == tokenizer("hello fake hubs")["input_ids"]
    assert ModelCard.load(repo_id).data.library_name == "transformers"
    assert fake_hub.tokens_seen() == {FAKE_TOKEN}
    assert fake_hub.unhandled == []


def test_subprocess_downloads_with_env(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo_id = "fake-user/subprocess"
    _push_folder(tmp_path, repo_id)
    code = (
        "import sys; from huggingface_hub import hf_hub_download, constants;"
        "assert constants.ENDPOINT.startswith('http://127.0.0.1:'), constants.ENDPOINT;"
        f"sys.stdout.buffer.write(open(hf_hub_download({repo_id!r}, 'sub/weights.bin'), 'rb').read())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=fake_hub.env(), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == BINARY
    assert fake_hub.requests[-1].token == FAKE_TOKEN
