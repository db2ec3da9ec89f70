"""What token checking costs a request: CPU per request of a minimal Litestar route without the
guard, with the guard and no token, with a cached token, and one first-sight ES256 verification.

Run under the bench lock: `flock /tmp/shopstream-bench.lock .venv/bin/python performance-tests/auth_cost.py`
(docs/security.md has the figures).
"""

import asyncio
import os
import tempfile
import time
import uuid

from litestar import Litestar, get

from shopstream import auth, guards
from shopstream.config import Settings

d = tempfile.mkdtemp()
os.environ["SHOPSTREAM_DATA_DIR"] = d
s = Settings.from_env()
auth.ensure_local_issuer(s)
guards.configure(s)


@get("/p", sync_to_thread=False)
def p() -> dict:
    return {"ok": 1}


apps = {
    "anonymous, no guard": (Litestar([p]), None),
    "guard, no token": (Litestar([p], guards=[guards.authenticate]), None),
    "guard, cached token": (
        Litestar([p], guards=[guards.authenticate]),
        auth.customer_token(s, str(uuid.uuid4())),
    ),
}


async def run(app, token, n):
    headers = [(b"host", b"x")] + (
        [(b"authorization", f"Bearer {token}".encode())] if token else []
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/p",
        "raw_path": b"/p",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m):
        pass

    for _ in range(n):
        await app(dict(scope, state={}), receive, send)


async def main():
    for app, tok in apps.values():
        await run(app, tok, 2000)
    res = {}
    for _rnd in range(3):
        for name, (app, tok) in apps.items():
            t = time.process_time()
            await run(app, tok, 20000)
            res.setdefault(name, []).append((time.process_time() - t) / 20000 * 1e6)
    for k, v in res.items():
        print(f"{k}: {sorted(v)[1]:.1f} us CPU per request (median of 3)")


asyncio.run(main())
v = auth.Verifier(s)
fresh = [auth.customer_token(s, str(uuid.uuid4())) for _ in range(500)]
t = time.process_time()
for tok in fresh:
    v.verify(tok)
print(
    f"first sight of a token (ES256 + claims): {(time.process_time() - t) / 500 * 1e6:.0f} us CPU"
)
