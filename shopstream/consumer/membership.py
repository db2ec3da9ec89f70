"""Whether the consumer group still counts a member that keeps polling: ``GroupMember`` asks the
broker every ``MEMBERSHIP_CHECK_SECONDS`` (``leave_if_lost``) and leaves the process when two
answers in a row said no, or three checks in a row got no answer."""

from __future__ import annotations

import logging
import os
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from shopstream import kafka
from shopstream.config import Settings

log = logging.getLogger(__name__)

MEMBERSHIP_CHECK_SECONDS = 30.0
LOST_GROUP_EXIT = 75  # EX_TEMPFAIL: start it again


class Membership:
    """When to ask the group whether it counts this member, and when the answers mean it is lost:
    two in a row without it (a member joining or rebalancing is out for seconds, never for a
    whole interval), or three checks in a row with no answer at all (a broker out of reach for
    that long: starting the consumer again costs nothing then)."""

    LOST_AFTER_ANSWERS = 2
    LOST_AFTER_SILENCES = 3

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
        return self._unanswered >= self.LOST_AFTER_SILENCES

    def seen(self, now: float, member: bool) -> bool:
        """Record one answer; True when the member is lost."""
        self._next = now + self.every
        self._unanswered = 0
        self._outside = 0 if member else self._outside + 1
        return self._outside >= self.LOST_AFTER_ANSWERS


def leave_if_lost(
    settings: Settings, group: str, consumer: Consumer, membership: Membership
) -> None:
    """Leave the process when the group has not counted this member in two answers in a row, or
    three checks in a row got no answer: librdkafka (2.16) can lose the group after its
    coordinator stopped answering for longer than the session (a broker frozen for 15 s: the
    group stayed empty while the consumer polled on, for as long as anyone watched).
    supervisord, or the orchestrator, starts a new process, which joins; what was applied and
    not committed comes again and changes nothing. Closing the consumer first could wait on the
    same lost coordinator: the process ends at once instead."""
    # A client of its own each time: a long-lived one met the same lost coordinator (its
    # question went unanswered while a new client's was answered at once).
    admin = AdminClient(kafka.admin_config(settings))
    try:
        described = admin.describe_consumer_groups([group])[group].result(10)
        lost = membership.seen(
            time.monotonic(), consumer.memberid() in {m.member_id for m in described.members}
        )
        why, checks = "out of its group in", Membership.LOST_AFTER_ANSWERS
    except Exception as exc:
        log.warning("group %s: membership not checked: %s", group, exc)
        lost = membership.unknown(time.monotonic())
        why, checks = "without an answer from the broker for", Membership.LOST_AFTER_SILENCES
    if lost:
        log.critical("group %s: this member has been %s %d checks in a row (%.0f s) while"
                     " polling: exiting so that a new process joins",
                     group, why, checks, checks * membership.every)  # fmt: skip
        logging.shutdown()
        os._exit(LOST_GROUP_EXIT)
