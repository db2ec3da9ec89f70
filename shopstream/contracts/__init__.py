"""The written contracts between the services: every integration event each service publishes,
on which topic, as a typed msgspec struct with a schema version.

A publisher builds the struct and puts ``data(struct)`` in the envelope; a consumer ``read``s an
envelope into the struct of its type and dispatches on that type, never on strings (a malformed
event raises ``Unreadable``, which the consumers dead-letter). ``docs/events.md``'s tables are
generated from these modules (``python -m shopstream.contracts.doc``) and a test keeps them so.
The domain events of order-service are translated to these at its edge (``adapters/recorder.py``).
"""

from shopstream.contracts.registry import (
    Contract,
    Unreadable,
    contract_of,
    data,
    read,
    registered,
)

__all__ = ["Contract", "Unreadable", "contract_of", "data", "read", "registered"]

# The contract modules register themselves: importing the package knows every event.
from shopstream.contracts import orders, products, stock

__all__ += ["orders", "products", "stock"]
