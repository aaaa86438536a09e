"""The server's defences (thyrovid.serve.security), on a small app and on the real one: an
oversize declared upload gets 413 before its body is read, a streamed one is cut at the limit,
a foreign Host and a cross-origin POST get 4xx, no answer holds a filesystem path, the pages
that load from a CDN are gone, every answer has nosniff / frame-ancestors, pairs are capped."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

import pytest

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi import FastAPI, File, UploadFile  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from thyrovid.errors import UserError  # noqa: E402
from thyrovid.serve.security import check_pairs, harden, scrub_paths  # noqa: E402

LIMIT = 4000
PATH = re.compile(r"(?<![\w.])/(?:tmp|work|root|home|var|usr)/")


def _app(host="127.0.0.1") -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    def upload(file: Annotated[UploadFile, File()]):
        size = len(file.file.read())
        return {"size": size, "where": "saved to /tmp/thyrovid-serve-x1/upload.dcm",
                "heatmap_png": "/9j/abc/def+/=="}  # fmt: skip

    @app.get("/page")
    def page():
        return {"ok": True}

    return harden(app, host=host, max_body_bytes=LIMIT)


def _client(app, host="127.0.0.1") -> TestClient:
    return TestClient(app, base_url=f"http://{host}")


def _asgi(app, headers: dict, chunks: list[bytes]):
    """Call the ASGI app directly: (status, number of body chunks the app pulled)."""
    pulled, sent = [], []

    async def receive():
        if len(pulled) >= len(chunks):
            return {"type": "http.disconnect"}
        pulled.append(chunks[len(pulled)])
        more = len(pulled) < len(chunks)
        return {"type": "http.request", "body": pulled[-1], "more_body": more}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/upload", "raw_path": b"/upload", "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], len(pulled)


def test_a_declared_oversize_body_is_refused_before_it_is_read():
    app = _app()
    status, pulled = _asgi(
        app,
        {
            "host": "127.0.0.1:8000",
            "content-length": str(2 << 30),
            "content-type": "multipart/form-data; boundary=x",
        },  # fmt: skip
        [b"x" * 1000] * 10,
    )
    assert (status, pulled) == (413, 0)


def test_a_streamed_body_is_cut_at_the_limit():
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="v.dcm"\r\n\r\n'
    chunks = [body] + [b"\0" * 500] * 40  # 20 000 bytes, no Content-Length (chunked)
    status, pulled = _asgi(
        _app(), {"host": "127.0.0.1", "content-type": "multipart/form-data; boundary=x"}, chunks
    )
    assert status == 413
    assert sum(len(c) for c in chunks[:pulled]) <= LIMIT + 500  # read no further than the limit


def test_an_upload_under_the_limit_passes():
    r = _client(_app()).post("/upload", files={"file": ("v.dcm", b"\1" * 1000)})
    assert r.status_code == 200 and r.json()["size"] == 1000


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]:8000", "127.0.0.1:8000"])
def test_loopback_hosts_are_served(host):
    assert _client(_app(), host).get("/page").status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "192.168.1.5"])
def test_a_foreign_host_is_refused(host):
    r = _client(_app(), host).get("/page")
    assert r.status_code == 421 and "Host" in r.json()["error"]


def test_host_given_with_serve_host_is_served_and_a_wildcard_serves_any():
    app = _app(host="192.168.1.5")
    assert _client(app, "192.168.1.5:8000").get("/page").status_code == 200
    assert _client(app, "evil.example").get("/page").status_code == 421
    assert _client(_app(host="0.0.0.0"), "thyrovid.lan").get("/page").status_code == 200


def test_a_cross_origin_post_is_refused_a_same_origin_one_served():
    client = _client(_app())
    files = {"file": ("v.dcm", b"\1" * 10)}
    evil = client.post("/upload", files=files, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-origin" in evil.json()["error"]
    site = client.post("/upload", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert site.status_code == 403
    null = client.post("/upload", files=files, headers={"Origin": "null"})
    assert null.status_code == 403
    same = client.post("/upload", files=files, headers={"Origin": "http://127.0.0.1"})
    assert same.status_code == 200
    assert client.get("/page", headers={"Origin": "http://evil.example"}).status_code == 200


def test_answers_carry_no_paths_and_the_security_headers():
    client = _client(_app())
    r = client.post("/upload", files={"file": ("v.dcm", b"\1")})
    assert r.json()["where"] == "saved to upload.dcm"
    assert r.json()["heatmap_png"] == "/9j/abc/def+/=="  # base64 is not a path
    for answer in (r, client.get("/page"), client.get("/nope"), _client(_app(), "evil").get("/")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert scrub_paths(r"C:\Users\me\upload.avi and /root/w/x.dcm") == "upload.avi and x.dcm"


def test_cdn_docs_are_gone_the_local_schema_stays():
    client = _client(_app())
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_pairs_per_request_are_capped():
    check_pairs(16)
    with pytest.raises(UserError, match="17 frame/box pairs in one request; at most 16"):
        check_pairs(17)


# ------------------------------------------------------------------- the real server
@pytest.fixture(scope="module")
def real(tiny):
    from thyrovid.serve.serve import create_app

    return create_app(tiny["run"], max_upload_mb=1)


def test_the_real_server_is_hardened(real, tiny):
    client = _client(real)
    info = client.get("/info")
    assert info.status_code == 200 and not PATH.search(info.text), info.text
    assert _client(real, "evil.example").get("/info").status_code == 421
    row = tiny["clips"].iloc[0]
    video = (tiny["phantom"] / row["video"]).read_bytes()
    box = ",".join(str(int(float(row[k]))) for k in ("x0", "y0", "x1", "y1"))
    form = {"frame": [str(int(row["key_frame"]))] * 17, "box": [box] * 17}
    many = client.post("/predict", files={"file": ("v.dcm", video)}, data=form)
    assert many.status_code == 400 and "at most 16" in many.json()["error"]
    cross = client.post("/predict", files={"file": ("v.dcm", video)}, data=form,
                        headers={"Origin": "http://evil.example"})  # fmt: skip
    assert cross.status_code == 403
    status, pulled = _asgi(real, {"host": "127.0.0.1", "content-length": str(3 << 30)}, [b"x"])
    assert (status, pulled) == (413, 0)
    one = {"frame": [str(int(row["key_frame"]))], "box": [box]}
    ok = client.post("/predict", files={"file": ("v.dcm", video)}, data=one)
    assert ok.status_code == 200 and not PATH.search(ok.text)
