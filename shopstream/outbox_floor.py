"""Where the relay's next read of the outbox starts.

Rows leave the outbox when Kafka has them, so the head of its key is a run of deleted rows until
vacuum comes by (up to 20,000 of them, see shared migration 0003). A read from the first key walks
them all (0.33 ms on average, up to 5.6 ms, by EXPLAIN ANALYZE during perf-check's order load; the
planner even chose to read the whole heap, see the relay's session settings). ``ScanFloor``
remembers the highest id below which every row has been published, so the read starts there.

Ids come from a sequence when a row is inserted, but rows become visible when their transaction
commits, not in id order: a saga's batch transaction can hold id 100 while id 105, committed by a
request, is already published. So the floor only moves up through ids seen without a gap. A gap
is a transaction still running, or one that rolled back (a version conflict): one that lasts
``GAP_SECONDS`` is stepped over, and every ``FULL_SECONDS`` one read starts from the first key
again, so a row whose transaction outlived the gap is still published, only later.
"""

from __future__ import annotations

from collections.abc import Sequence

GAP_SECONDS = 2.0
FULL_SECONDS = 5.0


class ScanFloor:
    def __init__(self) -> None:
        self.floor = 0
        """Every row with an id up to this one has been published (or will never exist)."""
        self._ahead: set[int] = set()  # published above the floor, past a gap
        self._gap: tuple[int, float] | None = None  # where the open gap starts, and since when
        self._full_at = 0.0

    def start(self, now: float) -> int:
        """The id the next read starts after: the floor, or 0 when a full read is due."""
        if now >= self._full_at:
            self._full_at = now + FULL_SECONDS
            return 0
        return self.floor

    def published(self, ids: Sequence[int], now: float) -> None:
        """The ids of a batch Kafka acknowledged."""
        self._ahead.update(i for i in ids if i > self.floor)
        while self.floor + 1 in self._ahead:
            self.floor += 1
            self._ahead.remove(self.floor)
        if not self._ahead:
            self._gap = None
        elif self._gap is None or self._gap[0] != self.floor:
            self._gap = (self.floor, now)
        elif now - self._gap[1] >= GAP_SECONDS:
            self.floor = max(self._ahead)
            self._ahead.clear()
            self._gap = None
