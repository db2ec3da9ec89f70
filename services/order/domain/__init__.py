"""The order domain: pure logic in the shop's language, standard library only, no I/O.

- ``values``: LineItem, OrderLine, ShippingAddress, ProcessingMode, CancelledBy.
- ``errors``: FieldError, InvalidOrder (422), IllegalTransition / AlreadyRecorded / CannotCancel (409).
- ``placement``: the PlaceOrder command, its parsing and validation (field-level errors).
- ``countries``: the ISO 3166-1 alpha-2 codes a shipping address may use.
- ``events``: what happened to an order (OrderPlaced, StockReserved, ...), immutable.
- ``state``: OrderState and ``evolve``, the pure fold of events into state.
- ``order``: the Order aggregate; each command method checks its rule and records an event.
- ``commands``: what the saga asks the outside world to do (ReserveStock, AuthorizePayment, ...).
- ``saga``: the process manager, a pure decision from (order, incoming message) to a Reaction.
- ``payment``: the payment port (protocol) and its result types.
- ``partitioning``: message-key strategies for Kafka and the Java-compatible partitioner.
"""
