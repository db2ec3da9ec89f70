"""A one-route Litestar app: what the framework alone costs per request (run.sh)."""

from litestar import Litestar, get
from litestar.response import Response

BODY = b'{"id":"x","name":"product","price":"10.00"}' * 10


@get("/products/{pid:str}")
async def one(pid: str) -> Response[bytes]:
    return Response(BODY, media_type="application/json")


app = Litestar([one])
