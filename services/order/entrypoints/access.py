"""Whose orders a caller may see and place (docs/security.md): a customer only their own, an
operator (role admin) any. Another customer's order answers 404, like one that does not exist, so
order ids cannot be probed."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.connection import ASGIConnection

from shopstream.auth import Principal
from shopstream.guards import signed_in
from shopstream.http import Problem, field_error


def caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    return signed_in(connection)


def customer_for_new_order(who: Principal, named: str | None) -> str:
    """The customer an order is placed for: the caller, unless an operator names one."""
    if named is None:
        if who.is_admin:
            raise Problem(
                400,
                "Invalid request",
                "an operator must name the customer_id",
                [field_error("customer_id", "required for operators")],
            )
        return who.subject
    if not who.is_admin and named != who.subject:
        raise Problem(
            403,
            "Forbidden",
            "customers place orders only for themselves",
            [field_error("customer_id", "must be the token's subject")],
        )
    return named


def may_see(who: Principal, customer_id: str) -> bool:
    return who.is_admin or customer_id == who.subject


def customer_filter(who: Principal, asked: uuid.UUID | None) -> uuid.UUID | None:
    """The customer filter of a listing: operators list anyone's (or all), customers their own."""
    if who.is_admin:
        return asked
    try:
        own = uuid.UUID(who.subject)
    except ValueError:
        raise Problem(
            403,
            "Forbidden",
            "the token's subject is not a customer id",
            [field_error("Authorization", "subject must be a customer UUID")],
        ) from None
    if asked is not None and asked != own:
        raise Problem(
            403,
            "Forbidden",
            "customers list only their own orders",
            [field_error("customer_id", "must be the token's subject")],
        )
    return own
