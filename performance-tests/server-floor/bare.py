"""A bare ASGI app: what granian alone costs per request (run.sh)."""

from typing import Any

BODY = b'{"id":"x","name":"product","price":"10.00"}' * 10


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": BODY})
