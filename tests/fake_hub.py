"""A small local stand-in for the Hugging Face Hub HTTP API, for tests of the real huggingface_hub client.

It answers exactly the calls wdqa makes (create_repo, upload_folder through the legacy LFS path,
create_tag, repo_info, list_repo_tree, snapshot_download / hf_hub_download with Range resume), in the
shapes huggingface_hub 2.x parses. Repos live in memory as a list of commits, each a full tree of
`path -> bytes`. Nothing here is wdqa code; it only needs to be honest about the protocol.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

# The Hub stores these as LFS objects (its default .gitattributes); other files are git blobs.
LFS_SUFFIXES = (".safetensors", ".parquet", ".pt", ".bin")


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size > 10 * 1024 * 1024


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit sha

    def resolve(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        sha = self.refs.get(revision, revision)
        for commit_sha, tree in self.commits:
            if commit_sha == sha:
                return commit_sha, tree
        return None


@contextmanager
def running_fake_hub() -> Iterator[FakeHub]:
    """A started FakeHub, with huggingface_hub on its legacy LFS upload path (the one a plain HTTP
    server can serve; Xet needs its own CAS); both undone on exit."""
    import huggingface_hub.constants

    saved = huggingface_hub.constants.HF_HUB_DISABLE_XET
    huggingface_hub.constants.HF_HUB_DISABLE_XET = True
    server = FakeHub()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        huggingface_hub.constants.HF_HUB_DISABLE_XET = saved


class FakeHub:
    """The server state, plus knobs tests use to simulate failures."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.requests: list[
            tuple[str, str, dict[str, str]]
        ] = []  # (method, path, lower-cased headers)
        # path-in-repo -> number of bytes after which the next GET of that file is cut off (once)
        self.cut_next_download: dict[str, int] = {}
        # path-in-repo -> bytes after which each of the next GETs of that file is cut off, in order
        self.cut_downloads: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.endpoint = ""

    # -- lifecycle

    def start(self) -> str:
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- helpers for tests

    def add_repo(self, repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> str:
        """A repo that already holds `files` on main, as if someone uploaded them; returns the commit sha."""
        with self.lock:
            repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type=repo_type, repo_id=repo_id))
            return self.new_commit(repo, {".gitattributes": b"*.pt filter=lfs\n", **files})

    def new_commit(self, repo: Repo, tree: dict[str, bytes], branch: str = "main") -> str:
        parent = repo.refs.get(branch, "")
        sha = hashlib.sha1(
            (parent + json.dumps(sorted(tree)) + str(len(repo.commits))).encode()
        ).hexdigest()
        repo.commits.append((sha, tree))
        repo.refs[branch] = sha
        return sha


class _Handler(BaseHTTPRequestHandler):
    state: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    # -- plumbing

    def _send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        # A HEAD response has headers only: a body would be read as the start of the next response,
        # and the client drops the connection (a ConnectionResetError traceback from the server thread).
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send_json(status, {"error": message}, headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.state.repos.get((repo_type, repo_id))

    def _record(self) -> None:
        with self.state.lock:
            self.state.requests.append(
                (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            )

    # -- routing

    def do_HEAD(self) -> None:
        self._record()
        self._route()

    def do_GET(self) -> None:
        self._record()
        self._route()

    def do_POST(self) -> None:
        self._record()
        self._route()

    def do_PUT(self) -> None:
        self._record()
        self._route()

    def _route(self) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        m = re.fullmatch(r"/api/repos/create", path)
        if m and self.command == "POST":
            return self._create_repo()
        if path == "/api/validate-yaml" and self.command == "POST":
            return self._validate_yaml()
        m = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/revision/(.+)", path)
        if m and self.command == "GET":
            return self._repo_info(m[1], m[2], m[3])
        m = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
        if m and self.command == "GET":
            return self._tree(m[1], m[2], m[3], (m[4] or "").strip("/"), query)
        m = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/preupload/(.+)", path)
        if m and self.command == "POST":
            return self._preupload(m[1], m[2], m[3])
        m = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/commit/(.+)", path)
        if m and self.command == "POST":
            return self._commit(m[1], m[2], m[3])
        m = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/tag/(.+)", path)
        if m and self.command == "POST":
            return self._tag(m[1], m[2], m[3])
        m = re.fullmatch(r"/api/(model|dataset)s/([^/]+/[^/]+)/branch/(.+)", path)
        if m and self.command == "POST":
            return self._branch(m[1], m[2], m[3])
        m = re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m and self.command == "POST":
            return self._lfs_batch()
        m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if m and self.command == "PUT":
            return self._lfs_put(m[1])
        m = re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m and self.command in ("GET", "HEAD"):
            return self._resolve("dataset" if m[1] else "model", m[2], m[3], m[4])
        self._error(404, f"fake hub: no route for {self.command} {path}")

    # -- endpoints

    def _create_repo(self) -> None:
        body = json.loads(self._body() or b"{}")
        repo_type = body.get("type") or "model"
        repo_id = (
            f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        )
        key = (repo_type, repo_id)
        with self.state.lock:
            url = f"{self.state.endpoint}/{repo_type}s/{repo_id}"
            if key in self.state.repos:  # the Hub's 409 still names the repo's url
                return self._send_json(409, {"error": "You already created this repo", "url": url})
            repo = Repo(repo_type=repo_type, repo_id=repo_id, private=bool(body.get("private")))
            self.state.new_commit(repo, {".gitattributes": b"*.safetensors filter=lfs\n"})
            self.state.repos[key] = repo
        self._send_json(200, {"url": url, "name": repo_id})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        resolved = repo.resolve(revision)
        if resolved is None:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        sha, tree = resolved
        self._send_json(
            200,
            {
                "id": repo_id,
                "sha": sha,
                "private": repo.private,
                "siblings": [{"rfilename": p} for p in sorted(tree)],
            },
        )

    def _entry(self, path: str, data: bytes) -> dict[str, object]:
        entry: dict[str, object] = {
            "type": "file",
            "path": path,
            "size": len(data),
            "oid": git_blob_oid(data),
        }
        if is_lfs(path, len(data)):
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        return entry

    def _tree(self, repo_type: str, repo_id: str, revision: str, prefix: str, query: dict) -> None:
        repo = self._repo(repo_type, repo_id)
        resolved = repo.resolve(revision) if repo else None
        if resolved is None:
            return self._error(404, "Repository or revision not found", "RevisionNotFound")
        _, tree = resolved
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        entries: list[dict[str, object]] = []
        folders: set[str] = set()
        for path in sorted(tree):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :] if prefix else path
            if "/" in rest and not recursive:
                folders.add((prefix + "/" if prefix else "") + rest.split("/", 1)[0])
                continue
            if recursive:  # the Hub lists the folders too
                parts = path.split("/")[:-1]
                for i in range(len(parts)):
                    folders.add("/".join(parts[: i + 1]))
            entries.append(self._entry(path, tree[path]))
        entries += [
            {"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in sorted(folders)
        ]
        self._send_json(200, entries)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        resolved = repo.resolve(revision)
        if resolved is None:
            return self._error(404, "Revision not found", "RevisionNotFound")
        sha, tree = resolved
        if path not in tree:
            return self._error(404, f"{path} does not exist", "EntryNotFound")
        data = tree[path]
        etag = hashlib.sha256(data).hexdigest() if is_lfs(path, len(data)) else git_blob_oid(data)
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if m:
            start = int(m[1])
        body = data[start:]
        self.send_response(206 if m else 200)
        self.send_header("X-Repo-Commit", sha)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if m:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = self.state.cut_next_download.pop(path, None)
        with self.state.lock:
            cuts = self.state.cut_downloads.get(path)
            if cut is None and cuts:
                cut = cuts.pop(0)
        if cut is not None and cut < len(body):
            # Simulate a dropped connection: send part of the body, then close the socket.
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        resolved = repo.resolve(revision) if repo else None
        if resolved is None:
            return self._error(404, "Repository or revision not found", "RevisionNotFound")
        _, tree = resolved
        files = []
        for f in json.loads(self._body())["files"]:
            lfs = is_lfs(f["path"], f["size"])
            existing = tree.get(f["path"])
            oid = None
            if existing is not None:
                oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_oid(existing)
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._send_json(200, {"files": files})

    def _lfs_batch(self) -> None:
        body = json.loads(self._body())
        objects = []
        for obj in body["objects"]:
            entry: dict[str, object] = {"oid": obj["oid"], "size": obj["size"]}
            if (
                obj["oid"] not in self.state.lfs_store
            ):  # already stored objects need no upload (resume)
                entry["actions"] = {
                    "upload": {"href": f"{self.state.endpoint}/lfs-upload/{obj['oid']}"}
                }
            objects.append(entry)
        self._send_json(200, {"transfer": "basic", "objects": objects})

    def _lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "sha256 of the uploaded object does not match its oid")
        with self.state.lock:
            self.state.lfs_store[oid] = data
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        resolved = repo.resolve(revision) if repo else None
        if repo is None or resolved is None:
            return self._error(404, "Repository or revision not found", "RevisionNotFound")
        tree = dict(resolved[1])
        for line in self._body().decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                tree[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                data = self.state.lfs_store.get(value["oid"])
                if data is None:
                    return self._error(
                        400, f"LFS object {value['oid']} for {value['path']} was never uploaded"
                    )
                tree[value["path"]] = data
            elif item["key"] == "deletedFile":
                tree.pop(value["path"], None)
        with self.state.lock:
            sha = self.state.new_commit(repo, tree, branch=revision)
        self._send_json(
            200,
            {
                "commitUrl": f"{self.state.endpoint}/{repo_type}s/{repo_id}/commit/{sha}",
                "commitOid": sha,
            },
        )

    def _tag(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        resolved = repo.resolve(revision) if repo else None
        if repo is None or resolved is None:
            return self._error(404, "Repository or revision not found", "RevisionNotFound")
        tag = json.loads(self._body())["tag"]
        with self.state.lock:
            if tag in repo.refs:
                return self._error(409, f"Tag {tag} already exists")
            repo.refs[tag] = resolved[0]
        self._send_json(200, {})

    def _branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        body = json.loads(self._body() or b"{}")
        resolved = repo.resolve(body.get("startingPoint") or "main")
        if resolved is None:
            return self._error(404, "Starting point not found", "RevisionNotFound")
        with self.state.lock:
            if branch in repo.refs:
                return self._error(409, f"Reference {branch} already exists")
            repo.refs[branch] = resolved[0]
        self._send_json(200, {})

    def _validate_yaml(self) -> None:
        # The Hub checks a card's YAML front matter before accepting a commit that touches README.md.
        import yaml

        content = json.loads(self._body())["content"]
        m = re.match(r"^---\n(.*?)\n---\n", content, flags=re.S)
        if m is None:
            return self._send_json(
                200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}
            )
        try:
            meta = yaml.safe_load(m[1])
        except yaml.YAMLError as err:
            return self._send_json(400, {"errors": [{"message": f"invalid YAML: {err}"}]})
        if not isinstance(meta, dict):
            return self._send_json(
                400, {"errors": [{"message": "metadata must be a YAML mapping"}]}
            )
        self._send_json(200, {"errors": [], "warnings": []})
