"""When the relay reads its next batch of the outbox.

A batch costs the same whatever it carries: a read, one produce request per partition it touches
(each of which answers a waiting fetch of every group that follows the topic), a delete. Under
load the relay lets rows gather for ``SHOPSTREAM_RELAY_LINGER_MS`` between two batches, so that
cost is paid for many rows at once. At a light rate there is nothing to gather, and waiting only
adds the linger to every hop of the saga: perf-check at 36 orders/s measured the relays' linger at
10 ms of the accepted -> ended p50 and 20 of its p99 (docs/performance, latency).

So the relay lingers only while it is busy: rows were committed while its last batch was out
(the NOTIFY of a commit arrived during the batch). The first row after a quiet moment goes at
once, and so does a batch that found everything already there.
"""

from __future__ import annotations


class Pace:
    def __init__(self, linger_seconds: float) -> None:
        self.linger = linger_seconds
        self._started = float("-inf")
        self._busy = False

    def wait_before_next(self, now: float) -> float:
        """Seconds to wait before the next read: the rest of the linger, counted from the last
        batch's start, while busy; nothing otherwise."""
        if not self._busy:
            return 0.0
        return max(0.0, self.linger - (now - self._started))

    def batch_started(self, now: float) -> None:
        self._started = now

    def batch_done(self, published: int, committed_meanwhile: bool) -> None:
        """``committed_meanwhile``: a commit's notification arrived while the batch was out."""
        self._busy = published > 0 and committed_meanwhile
