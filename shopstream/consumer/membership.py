"""Whether the consumer group still counts a member that keeps polling (``GroupMember`` asks the
broker every ``MEMBERSHIP_CHECK_SECONDS``, and leaves the process when two answers in a row said
no: see ``GroupMember._check_membership``)."""

from __future__ import annotations

import time

MEMBERSHIP_CHECK_SECONDS = 30.0
LOST_GROUP_EXIT = 75  # EX_TEMPFAIL: start it again


class Membership:
    """When to ask the group whether it counts this member, and when the answers mean it is lost:
    two in a row without it (a member joining or rebalancing is out for seconds, never for a
    whole interval), or three checks in a row with no answer at all (a broker out of reach for
    that long: starting the consumer again costs nothing then)."""

    def __init__(self, every: float = MEMBERSHIP_CHECK_SECONDS) -> None:
        self.every = every
        self._next = time.monotonic() + every
        self._outside = 0
        self._unanswered = 0

    def due(self, now: float) -> bool:
        return now >= self._next

    def unknown(self, now: float) -> bool:
        """Record a check with no answer; True when the member counts as lost."""
        self._next = now + self.every
        self._unanswered += 1
        return self._unanswered >= 3

    def seen(self, now: float, member: bool) -> bool:
        """Record one answer; True when the member is lost."""
        self._next = now + self.every
        self._unanswered = 0
        self._outside = 0 if member else self._outside + 1
        return self._outside >= 2
