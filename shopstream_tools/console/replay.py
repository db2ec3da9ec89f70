"""Dead-letter replay from the console, for operators: what ``shopstream dlq replay`` does, over HTTP.

``POST /api/kafka/dead-letter/replay`` (JSON, for scripts) and the button of the dead-letter page
(a form) both run ``shopstream_tools.dlq``: the messages read now are republished to their topics,
acknowledged, then deleted from the dead-letter topic. ``expect`` is the count the operator
reviewed: when the topic holds another count the replay is refused (409), so nothing is replayed
unseen. One replay at a time per console; the CLI stays available beside it (consumers drop a
message they see twice, by event id). Each replay is logged with who asked for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.response import Redirect

from shopstream import contract, redaction
from shopstream.http import Problem, field_error, strict_body
from shopstream_tools import dlq
from shopstream_tools.console.sources import Console

log = logging.getLogger("shopstream.console.replay")


# What the dead-letter page says after a refused replay (kafka_pages.REPLAY_NOTES)
NOTES = {"Dead letters changed": "changed", "Replay running": "running", "Replay refused": "refused"}


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    dry_run: bool = False
    expect: int | None = msgspec.field(default=None)


def _letter_json(d: dlq.DeadLetter) -> dict[str, Any]:
    return {
        "partition": d.partition,
        "offset": d.offset,
        "key": redaction.text((d.key or b"").decode("utf-8", "replace")),
        "original_topic": d.original_topic,
        "reason": redaction.text(d.reason),
        "consumer_group": d.header("dlq.consumer_group"),
    }


class Replayer:
    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = asyncio.Lock()

    async def run(self, who: str, dry_run: bool, expect: int | None) -> dict[str, Any]:
        if self._lock.locked():
            raise Problem(409, "Replay running", "another replay is running; retry when it ends")
        async with self._lock:
            settings = self.console.settings
            letters, ends = await self.console.run(dlq.read, settings)
            if expect is not None and expect != len(letters):
                raise Problem(
                    409,
                    "Dead letters changed",
                    f"the dead-letter topic holds {len(letters)} message(s), not the {expect} "
                    "reviewed: review them again",
                    [field_error("expect", f"now {len(letters)}")],
                )
            replayed = 0
            if letters and not dry_run:
                try:
                    replayed = await self.console.run(dlq.replay, settings, letters, ends)
                except (ValueError, RuntimeError) as exc:
                    log.warning("dlq replay by %s failed: %s", who, exc)
                    raise Problem(409, "Replay refused", redaction.text(str(exc))) from None
                log.info("dlq replay by %s: %d message(s) replayed", who, replayed)
            return {
                "dry_run": dry_run,
                "replayed": replayed,
                "messages": [_letter_json(d) for d in letters],
            }


def _who(request: Request[Any, Any, Any]) -> str:
    principal = request.scope.get("state", {}).get("principal")
    return principal.subject if principal is not None else "?"


def routes(console: Console) -> list[Any]:
    replayer = Replayer(console)

    @post(
        "/api/kafka/dead-letter/replay",
        status_code=200,
        summary="Replay the dead-lettered messages to their topics (dry_run: list them only)",
        responses=contract.problems({409: "another replay runs, the topic changed since `expect`"}),
    )
    async def replay_api(request: Request[Any, Any, Any]) -> dict[str, Any]:
        asked = await strict_body(request, ReplayRequest)
        if asked.expect is not None and asked.expect < 0:
            raise Problem(400, "Invalid expect", "a count", [field_error("expect", "must be >= 0")])
        return await replayer.run(_who(request), asked.dry_run, asked.expect)

    @post("/kafka/dead-letter/replay", media_type=MediaType.HTML, include_in_schema=False)
    async def replay_form(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        raw = str(form.get("expect") or "")
        if not raw.isdigit():
            raise Problem(400, "Invalid expect", "a count", [field_error("expect", "must be a count")])
        try:
            done = await replayer.run(_who(request), False, int(raw))
        except Problem as refused:
            if refused.status_code != 409:
                raise
            note = NOTES.get(refused.title, "refused")
            return Redirect(f"/kafka/dead-letter?note={note}", status_code=303)
        return Redirect(f"/kafka/dead-letter?replayed={done['replayed']}", status_code=303)

    return [replay_api, replay_form]

