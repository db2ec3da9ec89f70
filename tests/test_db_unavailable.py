"""Which database errors mean "PostgreSQL cannot be reached right now" (503), not a fault (500)."""

from __future__ import annotations

import asyncpg
import pytest

from shopstream import db


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
)
def test_the_database_going_away_is_unavailable(error: BaseException) -> None:
    assert db.unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.InternalClientError("unexpected codec state"),
        ValueError("a bug"),
    ],
)
def test_a_fault_of_the_request_or_the_code_is_not(error: BaseException) -> None:
    assert not db.unavailable(error)


def test_a_deadlock_victim_was_rolled_back_and_may_run_again() -> None:
    assert db.rolled_back(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
    assert db.rolled_back(asyncpg.exceptions.SerializationError("could not serialize"))
    assert not db.rolled_back(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not db.unavailable(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
