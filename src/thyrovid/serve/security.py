"""The local server's defences, in one place: `harden(app, host=...)` wraps a FastAPI app.

- Host check (DNS rebinding): only loopback names (127.0.0.1, localhost, ::1) unless
  `thyrovid serve --host` names another address; that name is then accepted too, and every
  name when it is a wildcard (0.0.0.0, ::). Anything else: 421.
- Origin check on state-changing requests (POST, PUT, PATCH, DELETE): a browser's Origin must
  be this server (scheme, host and port of the Host header), and Sec-Fetch-Site must not be
  cross-site; other sites cannot post to the local server. 403.
- Body size: a declared Content-Length above the limit is refused with 413 before one byte of
  the body is read; a body without a length (chunked) is counted as it streams in and cut
  at the limit with 413. Starlette spools multipart uploads to disk past 1 MiB, so memory
  stays flat whatever the upload.
- No filesystem path in any JSON answer: absolute paths in string values are cut to their last
  component (base64 images are left alone).
- Headers on every answer: X-Content-Type-Options nosniff, Content-Security-Policy
  frame-ancestors 'none' (and X-Frame-Options DENY), Referrer-Policy no-referrer.
- API docs: /docs and /redoc (Swagger UI and ReDoc load from a CDN) are removed; the local
  /openapi.json schema stays.
- `check_pairs`: a cap on frame/box pairs per request (each pair is a clip through the model,
  under the model's lock).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from thyrovid.errors import UserError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_PAIRS = 16
FORM_SLACK = 1 << 20  # room for the form fields around the video in a multipart body
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_POSIX_PATH = re.compile(r"(?<![\w.:/+=-])/(?:[^\s/'\"():,;<>]+/)+([^\s/'\"():,;<>]*)")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\s\\'\"():,;<>]+\\)+([^\s\\'\"():,;<>]*)")


def check_pairs(n: int, limit: int = MAX_PAIRS) -> None:
    """Refuse a request with more than `limit` frame/box pairs (one clip each)."""
    if n > limit:
        raise UserError(
            f"{n} frame/box pairs in one request; at most {limit} (send several requests)"
        )


def allowed_hosts(host: str | None) -> frozenset[str] | None:
    """The Host names to accept for `--host` (None: any, for a wildcard address)."""
    host = (host or "127.0.0.1").strip().strip("[]").lower()
    if host in WILDCARDS:
        return None
    return LOOPBACK | {host}


def host_name(value: str) -> str:
    """'example.org:8000' / '[::1]:8000' / '127.0.0.1' -> the name without port, lower-case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def scrub_paths(text: str) -> str:
    """Absolute paths in `text` -> their last component ('/tmp/x/upload.dcm' -> 'upload.dcm')."""
    text = _POSIX_PATH.sub(lambda m: m.group(1) or "(folder)", text)
    return _WINDOWS_PATH.sub(lambda m: m.group(1) or "(folder)", text)


def scrub_json(value, key: str = ""):
    """A JSON value with `scrub_paths` applied to every string not holding base64 data."""
    if isinstance(value, dict):
        return {k: scrub_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, key) for v in value]
    if isinstance(value, str) and not key.endswith(("_png", "_base64", "_jpeg")):
        return scrub_paths(value)
    return value


class BodyTooLarge(Exception):
    pass


class Hardening:
    """The ASGI middleware behind `harden` (see the module docstring)."""

    def __init__(self, app, hosts: Iterable[str] | None, max_body_bytes: int):
        self.app = app
        self.hosts = None if hosts is None else frozenset(hosts)
        self.max_body = int(max_body_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await _error(send, *refusal)
        state = {"received": 0, "started": False, "json": False, "body": [], "cut": False}

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    state["cut"] = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            if state["cut"]:  # the app turned the cut body into its own error: say what it was
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _error(send, 413, self._too_large())
                return None
            if message["type"] == "http.response.start":
                state["started"] = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                state["json"] = kind.startswith(b"application/json")
                if state["json"]:  # held back: the body is rewritten, its length changes
                    state["start"] = {**message, "headers": [
                        (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"
                    ] + extra}  # fmt: skip
                    return None
                message = {**message, "headers": [*message.get("headers", []), *extra]}
                return await send(message)
            if message["type"] == "http.response.body" and state["json"]:
                state["body"].append(message.get("body", b""))
                if message.get("more_body"):
                    return None
                body = _scrubbed(b"".join(state["body"]))
                start = state["start"]
                start["headers"].append((b"content-length", str(len(body)).encode()))
                await send(start)
                return await send({"type": "http.response.body", "body": body})
            return await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not state["started"]:
                await _error(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body >> 20} MiB; send a smaller video"

    def _refusal(self, scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return 421, (
                "unknown Host header; this server answers on "
                + ", ".join(sorted(self.hosts))
                + " (thyrovid serve --host names another)"
            )
        method = scope.get("method", "GET").upper()
        if method in STATE_CHANGING:
            origin = headers.get("origin")
            if headers.get("sec-fetch-site", "").lower() == "cross-site":
                return 403, "cross-site request refused"
            if origin is not None and not _same_origin(origin, host, scope):
                return 403, "cross-origin request refused: the page must come from this server"
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return 400, "Content-Length is not a number"
            if declared > self.max_body:
                return 413, self._too_large()
        return None


def _same_origin(origin: str, host: str, scope) -> bool:
    if origin == "null":
        return False
    parts = urlsplit(origin)
    scheme = scope.get("scheme", "http")
    if parts.scheme != scheme or not parts.netloc:
        return False
    default = {"http": 80, "https": 443}.get(scheme)
    origin_host = parts.netloc.lower()
    host = host.lower()
    if ":" not in host.rsplit("]", 1)[-1] and default is not None:
        host = f"{host}:{default}"
    if ":" not in origin_host.rsplit("]", 1)[-1] and default is not None:
        origin_host = f"{origin_host}:{default}"
    return origin_host == host


def _scrubbed(body: bytes) -> bytes:
    try:
        doc = json.loads(body)
    except ValueError:
        return scrub_paths(body.decode("utf-8", "replace")).encode()
    return json.dumps(
        scrub_json(doc), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")


async def _error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, *SECURITY_HEADERS]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def harden(app, host: str | None = "127.0.0.1", max_body_bytes: int = (2048 << 20) + FORM_SLACK):
    """Apply the module's defences to a FastAPI `app` (before it serves); returns `app`.

    Args:
        host: the address `thyrovid serve --host` binds (its name is accepted as Host).
        max_body_bytes: the largest request body (the upload limit plus FORM_SLACK).
    """
    cdn_pages = {getattr(app, "docs_url", None), getattr(app, "redoc_url", None),
                 getattr(app, "swagger_ui_oauth2_redirect_url", None)} - {None}  # fmt: skip
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in cdn_pages
    ]
    app.docs_url = app.redoc_url = None
    app.add_middleware(Hardening, hosts=allowed_hosts(host), max_body_bytes=max_body_bytes)
    return app
