"""Domain errors. The HTTP layer maps them: InvalidOrder -> 422, IllegalTransition -> 409."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field; ``field`` is a path such as ``lines[2].quantity``."""

    field: str
    message: str


class OrderError(Exception):
    """Base of every error the order domain raises on purpose."""


class InvalidOrder(OrderError):
    """The input breaks one or more placement rules; ``errors`` lists all of them."""

    def __init__(self, errors: tuple[FieldError, ...] | list[FieldError]) -> None:
        self.errors = tuple(errors)
        summary = "; ".join(f"{e.field}: {e.message}" for e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"invalid order: {summary}{more}")


class IllegalTransition(OrderError):
    """A command does not fit the order's current state (e.g. confirming a cancelled order)."""

    def __init__(self, order_id: UUID, status: str, action: str, why: str) -> None:
        self.order_id = order_id
        self.status = status
        self.action = action
        self.why = why
        super().__init__(f"order {order_id} is {status}: cannot {action}: {why}")


class AlreadyRecorded(IllegalTransition):
    """The fact was recorded before (a duplicate delivery); callers may treat it as a no-op."""


class CannotCancel(IllegalTransition):
    """The client asked to cancel an order that is already confirmed or rejected."""
