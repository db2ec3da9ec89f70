"""Whether the consumer group still counts a member that keeps polling (``GroupMember`` asks the
broker every ``MEMBERSHIP_CHECK_SECONDS``, and leaves the process when two answers in a row said
no: see ``GroupMember._check_membership``)."""

from __future__ import annotations

import time

MEMBERSHIP_CHECK_SECONDS = 30.0
LOST_GROUP_EXIT = 75  # EX_TEMPFAIL: start it again


class Membership:
    """When to ask the group whether it counts this member, and when two answers in a row said
    no (a member joining or rebalancing is out for seconds, never for a whole interval)."""

    def __init__(self, every: float = MEMBERSHIP_CHECK_SECONDS) -> None:
        self.every = every
        self._next = time.monotonic() + every
        self._outside = 0

    def due(self, now: float) -> bool:
        return now >= self._next

    def unknown(self, now: float) -> None:
        self._next = now + self.every

    def seen(self, now: float, member: bool) -> bool:
        """Record one answer; True when the member is lost."""
        self._next = now + self.every
        self._outside = 0 if member else self._outside + 1
        return self._outside >= 2
