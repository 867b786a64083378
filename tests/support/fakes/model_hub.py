"""A fake model hub on loopback: one repository served from a directory, speaking the part of
the Hugging Face Hub's HTTP API that `huggingface_hub.snapshot_download` uses:

    HEAD /api/models                                  the gateway's reachability look
    GET  /api/models/{repo}/revision/{rev}            {"id", "sha"}: the revision's commit
    GET  /api/models/{repo}/tree/{sha}                [{"type": "file", "path", "size", "oid"}]
    HEAD|GET /{repo}/resolve/{rev}/{path}              the file, with X-Repo-Commit and ETag

Any other repository or path answers 404 as the hub does. It records every request path."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class FakeHub:
    repo: str
    root: Path
    url: str = ""
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    requests: list[str] = field(default_factory=list)
    listing: int = 200
    """The status of `HEAD /api/models` (404: a server that answers, but not as a hub)."""

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())

    def downloaded(self) -> list[str]:
        """Paths of the files fetched whole (GET on a resolve URL)."""
        marker = f"GET /{self.repo}/resolve/"
        fetched = (r.removeprefix(marker) for r in self.requests if r.startswith(marker))
        return sorted(rest.partition("/")[2] for rest in fetched)


def _handler(hub: FakeHub) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(f"{self.command} {path}")
            api = f"/api/models/{hub.repo}/"
            if path == "/api/models":
                return self._send(hub.listing, b"[]", "application/json", body)
            if path.startswith(api + "revision/"):
                info = {"id": hub.repo, "modelId": hub.repo, "sha": hub.sha, "private": False}
                return self._send(200, json.dumps(info).encode(), "application/json", body)
            if path.startswith(api + "tree/"):
                tree = [
                    {
                        "type": "file",
                        "path": p.relative_to(hub.root).as_posix(),
                        "size": p.stat().st_size,
                        "oid": hashlib.sha1(p.read_bytes()).hexdigest(),  # git names blobs by SHA-1
                    }
                    for p in hub.files()
                ]
                return self._send(200, json.dumps(tree).encode(), "application/json", body)
            prefix = f"/{hub.repo}/resolve/"
            if path.startswith(prefix):
                _, _, name = path[len(prefix) :].partition("/")
                file = hub.root / name
                if name and file.is_file() and hub.root in file.resolve().parents:
                    data = file.read_bytes()
                    extra = {
                        "X-Repo-Commit": hub.sha,
                        "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    }
                    return self._send(200, data, "application/octet-stream", body, extra)
            return self._send(404, b'{"error": "Entry not found"}', "application/json", body)

        def _send(
            self,
            status: int,
            data: bytes,
            kind: str,
            body: bool,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


@contextmanager
def serve_hub(repo: str, root: Path, *, listing: int = 200) -> Iterator[FakeHub]:
    hub = FakeHub(repo, root, listing=listing)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
