"""In-memory fake of the Hugging Face Hub HTTP API, for tests (stdlib only).

Implements just enough of the Hub API used by ``huggingface_hub`` 2.x and ``transformers`` 5.x to create repos, commit
files (regular uploads only, no LFS/Xet), list and download them at any branch, tag or commit sha, and read a
``README.md`` model card. ``FakeHub`` runs a ``ThreadingHTTPServer`` on ``127.0.0.1`` in a daemon thread; the
``fake_hub`` pytest fixture points the current process (and, through ``fake_hub.env()``, subprocesses) at it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import mimetypes
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

FAKE_TOKEN = "hf_fake_test_token_do_not_leak"
FAKE_USER = "fake-user"
DEFAULT_BRANCH = "main"

# Mirrors the `.gitattributes` the real Hub puts in the initial commit of every new repo (shortened).
GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*tfevents* filter=lfs diff=lfs merge=lfs -text\n"
)

# Env vars that would make huggingface_hub ignore the fake (offline mode, staging) or look elsewhere (explicit caches).
_ENV_TO_UNSET = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_XET_CACHE",
)

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_SHA_RE = re.compile(r"[0-9a-f]{7,40}")
_API_REPO_RE = re.compile(r"^/api/(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
_RESOLVE_RE = re.compile(
    r"^/(?:(?P<type>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"
)


def git_blob_sha(data: bytes) -> str:
    """Git blob sha1 of ``data`` (what the Hub uses as oid/ETag of regular files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    # huggingface_hub.utils.parse_datetime only accepts this exact format.
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _repo_key(repo_id: str, repo_type: str = "model") -> str:
    return f"{_URL_PREFIX[repo_type]}{repo_id}"


def _parse_card_data(readme: bytes | None, strict: bool = False) -> dict[str, Any] | None:
    """YAML front matter of a README as a dict (None when absent or PyYAML is missing).

    Invalid front matter gives None, or ValueError when ``strict`` (used by /api/validate-yaml).
    """
    match = re.match(rb"^---[ \t]*\r?\n(.*?)\r?\n?---[ \t]*(\r?\n|$)", readme or b"", re.DOTALL)
    if match is None:
        return None
    try:
        import yaml
    except ImportError:
        return None
    try:
        data = yaml.safe_load(match.group(1).decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        if strict:
            raise ValueError(f"Invalid YAML in README.md front matter: {err}") from err
        return None
    if not isinstance(data, dict):
        if strict:
            raise ValueError("README.md front matter must be a YAML mapping")
        return None
    return data


class HubError(Exception):
    """An HTTP error answered the way the Hub does (``X-Error-Code`` / ``X-Error-Message`` headers)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass
class Commit:
    """One commit: a full snapshot of the repo files."""

    sha: str
    files: dict[str, bytes]
    message: str = ""
    description: str = ""
    parent: str | None = None
    date: str = field(default_factory=_now)


@dataclass
class Repo:
    """A repo: all its commits (any branch, oldest first) plus branch and tag heads."""

    repo_id: str
    repo_type: str = "model"
    private: bool = False
    commits: list[Commit] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)

    def commit(self, sha: str) -> Commit:
        """The commit with this exact sha."""
        return next(c for c in self.commits if c.sha == sha)

    def resolve(self, revision: str | None) -> Commit | None:
        """Commit for a branch, tag, full or abbreviated sha (None if unknown)."""
        rev = revision or DEFAULT_BRANCH
        for prefix, refs in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if rev.startswith(prefix) and rev[len(prefix) :] in refs:
                return self.commit(refs[rev[len(prefix) :]])
        if rev in self.branches:
            return self.commit(self.branches[rev])
        if rev in self.tags:
            return self.commit(self.tags[rev])
        if _SHA_RE.fullmatch(rev):
            matches = [c for c in self.commits if c.sha.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        return None


@dataclass
class RecordedRequest:
    """One request received by the fake (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # filled in once the fake has answered

    @property
    def authorization(self) -> str | None:
        """Raw ``Authorization`` header, if any."""
        return self.headers.get("authorization")

    @property
    def token(self) -> str | None:
        """Bearer token sent, if any."""
        auth = self.authorization or ""
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None


class FakeHub:
    """Fake Hugging Face Hub: ``start()`` it, point ``HF_ENDPOINT`` at ``.url``, inspect ``.repos``/``.requests``.

    ``token``: if set, only this bearer token is accepted; by default any bearer token is (writes without one get 401).
    ``auto_create_branches``: a commit to an unknown branch creates it from ``main`` (the real Hub answers 404
    RevisionNotFound instead; set False to mimic that, and use ``create_branch`` first).
    """

    TOKEN = FAKE_TOKEN

    def __init__(self, user: str = FAKE_USER, token: str | None = None, auto_create_branches: bool = True) -> None:
        self.user = user
        self.token = token
        self.auto_create_branches = auto_create_branches
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[str] = []
        self.hf_home: str | None = None
        self._lock = threading.RLock()
        self._counter = itertools.count()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._own_home: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeHub:
        """Start serving on a free port of 127.0.0.1."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        if self.hf_home is None:
            self._own_home = self.hf_home = tempfile.mkdtemp(prefix="fake_hub_home_")
        return self

    def stop(self) -> None:
        """Stop the server and remove the temporary HF_HOME it created."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_home is not None:
            shutil.rmtree(self._own_home, ignore_errors=True)
            if self.hf_home == self._own_home:
                self.hf_home = None
            self._own_home = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget all repos, recorded requests and unhandled routes (the commit counter keeps going)."""
        with self._lock:
            self.repos.clear()
            self.requests.clear()
            self.unhandled.clear()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use as HF_ENDPOINT)."""
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ test helpers

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        """The stored repo (KeyError if missing)."""
        return self.repos[_repo_key(repo_id, repo_type)]

    def files(self, repo_id: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> dict[str, bytes]:
        """All files of a repo at a revision (branch, tag or sha)."""
        commit = self.repo(repo_id, repo_type).resolve(revision)
        if commit is None:
            raise KeyError(f"unknown revision {revision!r} of {repo_id}")
        return dict(commit.files)

    def file(self, repo_id: str, path: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> bytes:
        """Content of one file at a revision (KeyError if missing)."""
        files = self.files(repo_id, revision, repo_type)
        if path not in files:
            raise KeyError(f"{path!r} not in {repo_id}@{revision}: {sorted(files)}")
        return files[path]

    def tokens_seen(self) -> set[str | None]:
        """Bearer tokens sent so far (None stands for requests without one)."""
        with self._lock:
            return {r.token for r in self.requests}

    def env_vars(self) -> dict[str, str]:
        """Variables that point a fresh process at this fake (set them before importing huggingface_hub)."""
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
        env = {
            "HF_ENDPOINT": self.url,
            "HF_TOKEN": self.token or FAKE_TOKEN,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
        if self.hf_home is not None:
            env["HF_HOME"] = self.hf_home
        return env

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Full environment for a subprocess: ``base`` (default ``os.environ``) plus ``env_vars()``, offline unset."""
        env = dict(os.environ if base is None else base)
        for name in _ENV_TO_UNSET:
            env.pop(name, None)
        env.update(self.env_vars())
        return env

    def configure(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point this process at the fake: env vars plus the huggingface_hub constants read at import time."""
        from huggingface_hub import constants, hf_api

        for name in _ENV_TO_UNSET:
            monkeypatch.delenv(name, raising=False)
        for name, value in self.env_vars().items():
            monkeypatch.setenv(name, value)

        # huggingface_hub computes these from the env once, at import: changing os.environ alone is not enough.
        home = self.hf_home or tempfile.mkdtemp(prefix="fake_hub_home_")
        hub_cache = os.path.join(home, "hub")
        assets_cache = os.path.join(home, "assets")
        token_path = os.path.join(home, "token")
        patches: dict[str, Any] = {
            "ENDPOINT": self.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {"127.0.0.1"}),
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
            "HF_HOME": home,
            "HF_HUB_CACHE": hub_cache,
            "HUGGINGFACE_HUB_CACHE": hub_cache,
            "HF_ASSETS_CACHE": assets_cache,
            "HUGGINGFACE_ASSETS_CACHE": assets_cache,
            "HF_TOKEN_PATH": token_path,
            "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens"),
            "HF_XET_CACHE": os.path.join(home, "xet"),
        }
        for name, value in patches.items():
            if hasattr(constants, name):
                monkeypatch.setattr(constants, name, value)
        # The module-level `HfApi()` behind `huggingface_hub.create_repo`, `upload_folder`, ... captured ENDPOINT.
        monkeypatch.setattr(hf_api.api, "endpoint", self.url)
        # transformers caches its own HfApi (`transformers.utils.hub.hf_api()`): drop it so it is rebuilt.
        tf_hub = sys.modules.get("transformers.utils.hub")
        if tf_hub is not None and hasattr(tf_hub, "_hf_api"):
            monkeypatch.setattr(tf_hub, "_hf_api", None)

    def forget_cached_clients(self) -> None:
        """Drop transformers' cached HfApi if it points at this fake (it may be created lazily during a test)."""
        tf_hub = sys.modules.get("transformers.utils.hub")
        cached = getattr(tf_hub, "_hf_api", None) if tf_hub is not None else None
        if cached is not None and getattr(cached, "endpoint", None) == self.url:
            tf_hub._hf_api = None  # type: ignore[union-attr]

    # ------------------------------------------------------------------ state changes (used by the handler)

    def _new_sha(self, repo: Repo, parent: str | None, message: str, files: dict[str, bytes]) -> str:
        # A counter makes shas unique even for identical content, so caches of different tests never collide.
        h = hashlib.sha1(f"{next(self._counter)}\0{repo.repo_type}/{repo.repo_id}\0{parent}\0{message}".encode())
        for path in sorted(files):
            h.update(f"\0{path}\0{git_blob_sha(files[path])}".encode())
        return h.hexdigest()

    def _add_commit(
        self, repo: Repo, branch: str, files: dict[str, bytes], message: str, description: str = ""
    ) -> Commit:
        parent = repo.branches.get(branch)
        commit = Commit(
            sha=self._new_sha(repo, parent, message, files),
            files=files,
            message=message,
            description=description,
            parent=parent,
        )
        repo.commits.append(commit)
        repo.branches[branch] = commit.sha
        return commit

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False) -> Repo:
        """Create a repo directly (no HTTP), with the Hub's initial ``.gitattributes`` commit."""
        with self._lock:
            key = _repo_key(repo_id, repo_type)
            if key in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo", headers={})
            repo = Repo(repo_id=repo_id, repo_type=repo_type, private=private)
            self._add_commit(repo, DEFAULT_BRANCH, {".gitattributes": GITATTRIBUTES}, "initial commit")
            self.repos[key] = repo
            return repo


# ---------------------------------------------------------------------- HTTP handler


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: httpx reuses connections; every response sets Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass  # keep pytest output clean

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self._path = split.path
        self._query = parse_qs(split.query, keep_blank_values=True)
        self._body = self._read_body()
        self._method = method
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._request = RecordedRequest(method, self.path, self._query, headers, self._body)
        with self.hub._lock:
            self.hub.requests.append(self._request)
        try:
            self._check_token()
            self._route(method)
        except HubError as err:
            body = json.dumps({"error": err.message}).encode()
            extra = {"X-Error-Message": err.message, **err.headers}
            if err.code:
                extra["X-Error-Code"] = err.code
            self._send(err.status, body, "application/json", extra)
        except Exception as err:  # a bug in the fake: answer 500 rather than hanging the client
            self._send(500, json.dumps({"error": f"FakeHub internal error: {err!r}"}).encode(), "application/json")
            raise

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._request.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self._method != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _json_body(self) -> Any:
        try:
            return json.loads(self._body or b"{}")
        except json.JSONDecodeError as err:
            raise HubError(400, f"Invalid JSON body: {err}") from err

    def _check_token(self) -> None:
        token = self._request.token
        if token is not None and self.hub.token is not None and token != self.hub.token:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _require_write(self) -> None:
        # This message keeps huggingface_hub from turning the 401 into RepositoryNotFoundError.
        if self._request.token is None:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        with self.hub._lock:
            repo = self.hub.repos.get(_repo_key(repo_id, repo_type))
        if repo is None or (repo.private and self._request.token is None):
            # Like the Hub: a private repo is indistinguishable from a missing one without credentials.
            raise HubError(401 if repo else 404, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _unknown(self) -> None:
        with self.hub._lock:
            self.hub.unhandled.append(f"{self._method} {self._path}")
        raise HubError(404, f"FakeHub: route not implemented: {self._method} {self._path}")

    # ------------------------------------------------------------------ routing

    def _route(self, method: str) -> None:
        path = self._path
        if path == "/api/whoami-v2" and method == "GET":
            return self._whoami()
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo()
        if path == "/api/repos/delete" and method == "DELETE":
            return self._delete_repo()
        if path == "/api/validate-yaml" and method == "POST":
            return self._validate_yaml()
        match = _API_REPO_RE.match(path)
        if match:
            repo_type = _REPO_TYPES[match["type"]]
            repo_id = f"{unquote(match['ns'])}/{unquote(match['name'])}"
            segments = [unquote(s) for s in (match["rest"] or "").split("/")[1:]]
            return self._route_api(method, repo_type, repo_id, segments)
        match = _RESOLVE_RE.match(path)
        if match and method in ("GET", "HEAD"):
            repo_type = _REPO_TYPES.get(match["type"] or "models", "model")
            repo_id = f"{unquote(match['ns'])}/{unquote(match['name'])}"
            return self._resolve_file(repo_type, repo_id, unquote(match["rev"]), unquote(match["path"]))
        return self._unknown()

    def _route_api(self, method: str, repo_type: str, repo_id: str, seg: list[str]) -> None:
        action, args = (seg[0], seg[1:]) if seg else ("", [])
        if action == "" and method == "GET":
            return self._info(repo_type, repo_id, DEFAULT_BRANCH)
        if action == "revision" and method == "GET" and args:
            return self._info(repo_type, repo_id, "/".join(args))
        if action == "tree" and method == "GET" and args:
            return self._tree(repo_type, repo_id, args[0], "/".join(args[1:]).strip("/"))
        if action == "paths-info" and method == "POST" and args:
            return self._paths_info(repo_type, repo_id, "/".join(args))
        if action == "refs" and method == "GET":
            return self._refs(repo_type, repo_id)
        if action == "commits" and method == "GET" and args:
            return self._commits(repo_type, repo_id, "/".join(args))
        if action == "preupload" and method == "POST" and args:
            return self._preupload(repo_type, repo_id, "/".join(args))
        if action == "commit" and method == "POST" and args:
            return self._commit(repo_type, repo_id, "/".join(args))
        if action == "branch" and args and method in ("POST", "DELETE"):
            return self._branch(method, repo_type, repo_id, "/".join(args))
        if action == "tag" and args and method in ("POST", "DELETE"):
            return self._tag(method, repo_type, repo_id, "/".join(args))
        if action == "settings" and method == "PUT":
            return self._settings(repo_type, repo_id)
        return self._unknown()

    # ------------------------------------------------------------------ endpoints

    def _whoami(self) -> None:
        self._require_write()
        self._json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": self.hub.user,
                "fullname": "Fake User",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}},
            }
        )

    def _create_repo(self) -> None:
        self._require_write()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        private = payload.get("visibility", "public") == "private" or bool(payload.get("private"))
        url = f"{self.hub.url}/{_repo_key(repo_id, repo_type)}"
        try:
            self.hub.create_repo(repo_id, repo_type, private)
        except HubError:
            # The Hub answers 409 with the url of the existing repo; huggingface_hub's exist_ok relies on the 409.
            self._json({"error": f"You already created this {repo_type} repo", "url": url}, status=409)
            return
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        self._require_write()
        payload = self._json_body()
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        key = _repo_key(repo_id, payload.get("type") or "model")
        with self.hub._lock:
            if key not in self.hub.repos:
                raise HubError(404, "Repository not found", "RepoNotFound")
            del self.hub.repos[key]
        self._json({})

    def _validate_yaml(self) -> None:
        try:
            _parse_card_data(str(self._json_body().get("content", "")).encode(), strict=True)
        except ValueError as err:
            return self._json({"errors": [{"message": str(err)}], "warnings": []}, status=400)
        self._json({"errors": [], "warnings": []})

    def _info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._get_repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        blobs = self._query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path in sorted(commit.files):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=len(commit.files[path]), blobId=git_blob_sha(commit.files[path]))
            siblings.append(sibling)
        card = _parse_card_data(commit.files.get("README.md")) or {}
        tags = [str(t) for t in card.get("tags") or [] if isinstance(t, (str, int, float))]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": tags,
            "siblings": siblings,
            "usedStorage": sum(len(v) for v in commit.files.values()),
        }
        if repo_type == "model":
            info["modelId"] = repo_id
            if card.get("library_name"):
                info["library_name"] = card["library_name"]
            if card.get("pipeline_tag"):
                info["pipeline_tag"] = card["pipeline_tag"]
            try:
                config = json.loads(commit.files.get("config.json", b"null"))
            except ValueError:
                config = None
            if isinstance(config, dict):
                info["config"] = {k: config[k] for k in ("architectures", "model_type") if k in config}
        if card:
            info["cardData"] = card
        self._json(info)

    @staticmethod
    def _entry(files: dict[str, bytes], path: str) -> dict[str, Any] | None:
        if path in files:
            return {"type": "file", "oid": git_blob_sha(files[path]), "size": len(files[path]), "path": path}
        prefix = path + "/"
        children = sorted(p for p in files if p.startswith(prefix))
        if not path or not children:
            return None
        tree_sha = hashlib.sha1("".join(f"{p}:{git_blob_sha(files[p])}" for p in children).encode()).hexdigest()
        return {"type": "directory", "oid": tree_sha, "size": 0, "path": path}

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        commit = self._resolve(self._get_repo(repo_type, repo_id), revision)
        recursive = self._query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{path}/" if path else ""
        under = [p for p in commit.files if p.startswith(prefix)]
        if path and not under:
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        names: set[str] = set()
        for file_path in under:
            parts = file_path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            # Every ancestor directory (recursive) or only the direct child (non-recursive) is listed.
            for i in range(1, depth + 1):
                names.add(prefix + "/".join(parts[:i]))
        entries = [self._entry(commit.files, name) for name in sorted(names)]
        self._json([e for e in entries if e is not None])

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        commit = self._resolve(self._get_repo(repo_type, repo_id), revision)
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            paths = self._json_body().get("paths", [])
        else:
            paths = parse_qs(self._body.decode(), keep_blank_values=True).get("paths", [])
        entries = [self._entry(commit.files, p.strip("/")) for p in paths]
        self._json([e for e in entries if e is not None])

    def _refs(self, repo_type: str, repo_id: str) -> None:
        repo = self._get_repo(repo_type, repo_id)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()]
        tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()]
        self._json({"branches": branches, "converts": [], "tags": tags, "pullRequests": []})

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._get_repo(repo_type, repo_id)
        commit: Commit | None = self._resolve(repo, revision)
        history = []
        while commit is not None:
            history.append(
                {
                    "id": commit.sha,
                    "title": commit.message,
                    "message": commit.description,
                    "authors": [{"user": self.hub.user}],
                    "date": commit.date,
                }
            )
            commit = repo.commit(commit.parent) if commit.parent else None
        self._json(history)

    def _target_branch(self, repo: Repo, revision: str) -> str:
        """Branch a write goes to; an unknown branch is created from main when allowed."""
        if self._query.get("create_pr"):
            raise HubError(400, "FakeHub does not support create_pr")
        branch = revision.removeprefix("refs/heads/")
        if branch not in repo.branches:
            if not self.hub.auto_create_branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            if repo.resolve(branch) is not None:
                raise HubError(400, f"Can only commit to a branch, not to {revision}")
        return branch

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._require_write()
        repo = self._get_repo(repo_type, repo_id)
        branch = self._target_branch(repo, revision)
        head = repo.resolve(branch) or repo.resolve(DEFAULT_BRANCH)
        current = head.files if head else {}
        files = []
        for item in self._json_body().get("files", []):
            path = item["path"]
            entry: dict[str, Any] = {"path": path, "uploadMode": "regular", "shouldIgnore": False}
            if path in current:
                # Lets huggingface_hub skip files whose content did not change, like on the real Hub.
                entry["oid"] = git_blob_sha(current[path])
            files.append(entry)
        self._json({"files": files, "commitOid": head.sha if head else None})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._require_write()
        repo = self._get_repo(repo_type, repo_id)
        lines = [json.loads(line) for line in self._body.splitlines() if line.strip()]
        with self.hub._lock:
            branch = self._target_branch(repo, revision)
            base = repo.resolve(branch) or repo.resolve(DEFAULT_BRANCH)
            files = dict(base.files) if base else {}
            header: dict[str, Any] = {}
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "header":
                    header = value
                elif key == "file":
                    content = value.get("content", "")
                    data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                    files[value["path"]] = data
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    doomed = [p for p in files if p.startswith(prefix)]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {value['path']}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
                elif key == "lfsFile":
                    raise HubError(400, "FakeHub only accepts regular uploads (preupload never answers 'lfs')")
                else:
                    raise HubError(400, f"Unknown commit operation: {key}")
            parent = header.get("parentCommit")
            if parent and base is not None and parent != base.sha:
                raise HubError(412, f"Parent commit {parent} is not the head of {branch} ({base.sha})")
            if branch not in repo.branches and base is not None:
                repo.branches[branch] = base.sha
            commit = self.hub._add_commit(
                repo, branch, files, str(header.get("summary", "")), str(header.get("description", ""))
            )
        commit_url = f"{self.hub.url}/{_repo_key(repo_id, repo_type)}/commit/{commit.sha}"
        self._json({"success": True, "commitOid": commit.sha, "commitUrl": commit_url, "hookOutput": ""})

    def _branch(self, method: str, repo_type: str, repo_id: str, branch: str) -> None:
        self._require_write()
        repo = self._get_repo(repo_type, repo_id)
        with self.hub._lock:
            if method == "DELETE":
                if branch not in repo.branches:
                    raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                del repo.branches[branch]
                return self._json({})
            if branch in repo.branches:
                raise HubError(409, "Reference already exists")
            start = self._json_body().get("startingPoint") or DEFAULT_BRANCH
            repo.branches[branch] = self._resolve(repo, start).sha
        self._json({})

    def _tag(self, method: str, repo_type: str, repo_id: str, arg: str) -> None:
        self._require_write()
        repo = self._get_repo(repo_type, repo_id)
        with self.hub._lock:
            if method == "DELETE":
                if arg not in repo.tags:
                    raise HubError(404, f"Invalid rev id: {arg}", "RevisionNotFound")
                del repo.tags[arg]
                return self._json({})
            tag = self._json_body().get("tag")
            if not tag:
                raise HubError(400, "Missing tag name")
            if tag in repo.tags:
                raise HubError(409, "Tag already exists")
            repo.tags[tag] = self._resolve(repo, arg).sha
        self._json({})

    def _settings(self, repo_type: str, repo_id: str) -> None:
        self._require_write()
        repo = self._get_repo(repo_type, repo_id)
        payload = self._json_body()
        if "private" in payload:
            repo.private = bool(payload["private"])
        if "visibility" in payload:
            repo.private = payload["visibility"] == "private"
        self._json({"private": repo.private})

    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        commit = self._resolve(self._get_repo(repo_type, repo_id), revision)
        if path not in commit.files:
            # X-Repo-Commit lets huggingface_hub cache the absence of the file for this commit.
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        data = commit.files[path]
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{git_blob_sha(data)}"',
            "Accept-Ranges": "bytes",
            "Content-Length": str(len(data)),
        }
        status, body = 200, data
        range_match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if range_match and self._method == "GET":
            start = int(range_match[1])
            end = min(int(range_match[2]) if range_match[2] else len(data) - 1, len(data) - 1)
            if start >= len(data):
                raise HubError(
                    416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"}
                )
            status, body = 206, data[start : end + 1]
            headers.update({"Content-Range": f"bytes {start}-{end}/{len(data)}", "Content-Length": str(len(body))})
        content_type = mimetypes.guess_type(path)[0] or (
            "text/plain" if path.endswith((".md", ".yaml", ".yml", ".jinja")) else "application/octet-stream"
        )
        if content_type.startswith("text/") or content_type == "application/json":
            content_type += "; charset=utf-8"
        self._send(status, body, content_type, headers)


# ---------------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session")
def fake_hub_server() -> Iterator[FakeHub]:
    """One FakeHub server for the whole session (use ``fake_hub`` in tests)."""
    hub = FakeHub().start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def fake_hub(
    fake_hub_server: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeHub]:
    """The session FakeHub, emptied, with this process pointed at it and a fresh HF_HOME for this test."""
    hub = fake_hub_server
    hub.reset()
    previous_home = hub.hf_home
    hub.hf_home = str(tmp_path_factory.mktemp("hf_home"))
    hub.configure(monkeypatch)
    try:
        yield hub
    finally:
        hub.forget_cached_clients()
        hub.hf_home = previous_home


__all__ = [
    "FAKE_TOKEN",
    "FAKE_USER",
    "Commit",
    "FakeHub",
    "HubError",
    "RecordedRequest",
    "Repo",
    "fake_hub",
    "fake_hub_server",
    "git_blob_sha",
]
