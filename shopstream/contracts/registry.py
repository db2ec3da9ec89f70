"""The base of every integration event and the table from (topic, type) to its struct."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec

from shopstream.events import Event


class Unreadable(ValueError):
    """An event of a known type whose data does not fit its contract."""


class Contract(msgspec.Struct, kw_only=True):
    """An integration event's ``data``. Unknown fields are ignored (additive changes keep the
    version); a change a consumer cannot read raises ``VERSION``."""

    TOPIC: ClassVar[str]
    VERSION: ClassVar[int] = 1
    PUBLISHER: ClassVar[str]


_TABLE: dict[tuple[str, str], type[Contract]] = {}
C = TypeVar("C", bound=type[Contract])


def registered(cls: C) -> C:
    """Class decorator: ``cls`` is the contract of events of its name on its topic."""
    _TABLE[(cls.TOPIC, cls.__name__)] = cls
    return cls


def contract_of(topic: str, event_type: str) -> type[Contract] | None:
    return _TABLE.get((topic, event_type))


def contracts() -> list[type[Contract]]:
    return list(_TABLE.values())


def read(topic: str, event: Event) -> Contract | None:
    """The envelope's data as its contract; None for a type the topic's contracts do not name."""
    cls = contract_of(topic, event.type)
    if cls is None:
        return None
    if event.version > cls.VERSION:
        raise Unreadable(f"{event.type} version {event.version}: this consumer reads {cls.VERSION}")
    try:
        return msgspec.convert(event.data, cls)
    except msgspec.ValidationError as exc:
        raise Unreadable(f"{event.type} {event.id}: {exc}") from exc


def data(contract: Contract) -> dict[str, Any]:
    """The envelope's ``data`` for ``contract``, as JSON-ready builtins."""
    out: dict[str, Any] = msgspec.to_builtins(contract)
    return out
