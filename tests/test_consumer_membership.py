"""When a polling member counts as lost: two answers in a row from the group without it."""

from __future__ import annotations

from shopstream.consumer.membership import Membership


def test_two_answers_without_the_member_in_a_row_mean_lost() -> None:
    m = Membership(every=30)
    assert not m.due(0)  # the first check waits a whole interval: a member needs time to join
    assert m.seen(100, member=False) is False  # once out: a rebalance, perhaps
    assert not m.due(110) and m.due(130)
    assert m.seen(130, member=False) is True


def test_an_answer_with_the_member_or_none_at_all_starts_again() -> None:
    m = Membership(every=30)
    assert m.seen(100, member=False) is False
    assert m.seen(130, member=True) is False
    assert m.seen(160, member=False) is False
    assert m.unknown(190) is False  # the broker out of reach once: no answer, no count
    assert not m.due(200) and m.due(220)
    assert m.seen(220, member=False) is True  # two answers "out" in a row, the gap not counted


def test_three_checks_without_an_answer_in_a_row_mean_lost() -> None:
    m = Membership(every=30)
    assert m.unknown(100) is False
    assert m.unknown(130) is False
    assert m.seen(160, member=True) is False  # an answer starts the count again
    assert m.unknown(190) is False
    assert m.unknown(220) is False
    assert m.unknown(250) is True
