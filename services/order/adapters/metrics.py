"""The order service's Prometheus metrics, observed from what was recorded (after its commit).

Stage times come from the events' own timestamps, so they mean the same in every process:
- ``order_stage_seconds{stage, mode}``: from acceptance to reaching ``stage`` (published,
  stock_reserved, stock_rejected, payment_authorized, payment_declined, confirmed, cancelled,
  rejected): the cumulative latency chart.
- ``order_step_seconds{step, mode}``: the breakdown, one step at a time: ``publish`` (accepted to
  on Kafka), ``reserve`` (accepted to the stock answer), ``pay`` (stock reserved to the payment
  answer), ``confirm`` (payment authorized to confirmed).
- ``order_end_to_end_seconds{mode, outcome}``: accepted to the terminal state.
- ``orders_shed_total`` and ``orders_async_backlog``: async orders refused while the backlog was
  full, and the backlog each order instance counts for that decision (``backlog.py``).
- ``order_transitions_total{status, mode}``, ``order_compensations_total{action, reason, mode}`` and the
  gauge ``orders{status, mode}`` (refreshed from the projection by the consumer process).

The same business figures go to CloudWatch as EMF when it is configured (``shopstream.emf``):
``OrdersEnded{Outcome, Mode}``, ``SagaStepDuration{Step, Mode}`` (milliseconds) and
``Compensations{Action, Reason}``.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from services.order.adapters.recorder import Recorded
from services.order.domain import events as ev
from services.order.domain.state import OrderState, OrderStatus
from services.order.domain.values import CancelledBy
from shopstream import emf

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

STAGE = Histogram(
    "order_stage_seconds", "From order accepted to the stage reached", ["stage", "mode"],
    buckets=_BUCKETS,
)
STEP = Histogram(
    "order_step_seconds", "Duration of one saga step", ["step", "mode"], buckets=_BUCKETS
)
END_TO_END = Histogram(
    "order_end_to_end_seconds", "From order accepted to its terminal state", ["mode", "outcome"],
    buckets=_BUCKETS,
)
TRANSITIONS = Counter(
    "order_transitions_total", "Orders entering a status", ["status", "mode"]
)
COMPENSATIONS = Counter(
    "order_compensations_total", "Compensations recorded (stock released, payment voided)",
    ["action", "reason", "mode"],
)
FOLLOW_UPS = Counter(
    "order_follow_ups_total", "Async orders followed up after no news for saga_follow_up_seconds"
)
SHED = Counter(
    "orders_shed_total", "Async orders refused with 503 while order_backlog_limit were in flight"
)
BACKLOG = Gauge(
    "orders_async_backlog", "Async orders in flight as this instance last counted them (admission)"
)
ORDERS = Gauge(
    "orders_in_flight", "Orders not ended yet, by status and mode (projection)", ["status", "mode"]
)

EMF_ENDED = emf.declare("OrdersEnded", "Count", ("Outcome", "Mode"), "count")
EMF_STEP = emf.declare("SagaStepDuration", "Milliseconds", ("Step", "Mode"), "sampled")
EMF_COMPENSATIONS = emf.declare("Compensations", "Count", ("Action", "Reason"), "count")

_STAGE_OF = {
    ev.StockReserved: "stock_reserved",
    ev.StockRejected: "stock_rejected",
    ev.PaymentAuthorized: "payment_authorized",
    ev.PaymentDeclined: "payment_declined",
    ev.OrderConfirmed: "confirmed",
    ev.OrderCancelled: "cancelled",
    ev.OrderRejected: "rejected",
}


def compensation_reason(state: OrderState, reason: str) -> str:
    """A bounded label for why a compensation happened."""
    if "after the order was" in reason:
        return "late_answer"  # a reservation or authorization that came after the order ended
    if state.cancelled_by is CancelledBy.CLIENT:
        return "client_cancel"
    if state.payment_declined_reason is not None:
        return "payment_declined"
    if state.status is OrderStatus.REJECTED:
        return "rejected"
    return "other"


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def observe_published(mode: str, accepted: datetime, published: datetime) -> None:
    seconds = max(0.0, (published - accepted).total_seconds())
    STAGE.labels("published", mode).observe(seconds)
    _step("publish", mode, seconds)


def _step(step: str, mode: str, seconds: float) -> None:
    STEP.labels(step, mode).observe(seconds)
    emf.observe(EMF_STEP, {"Step": step, "Mode": mode}, round(seconds * 1000, 3))


def _compensation(action: str, reason: str, mode: str) -> None:
    COMPENSATIONS.labels(action, reason, mode).inc()
    emf.count(EMF_COMPENSATIONS, {"Action": action, "Reason": reason})


def observe(recorded: Recorded) -> None:
    state = recorded.state
    mode = state.mode.value
    t = state.timestamps
    for status in recorded.new_statuses:
        TRANSITIONS.labels(status, mode).inc()
    for stored in recorded.events:
        event = stored.event
        kind = type(event)
        stage = _STAGE_OF.get(kind)
        if stage is not None:
            since = _seconds(event.occurred_at, t.accepted)
            if since is not None:
                STAGE.labels(stage, mode).observe(since)
        step: tuple[str, float | None] | None = None
        if kind in (ev.StockReserved, ev.StockRejected) and stored.version == 2:
            step = ("reserve", _seconds(event.occurred_at, t.accepted))
        elif kind in (ev.PaymentAuthorized, ev.PaymentDeclined):
            step = ("pay", _seconds(event.occurred_at, t.stock_reserved))
        elif kind is ev.OrderConfirmed:
            step = ("confirm", _seconds(event.occurred_at, t.payment_authorized))
        if step is not None and step[1] is not None:
            _step(step[0], mode, step[1])
        if isinstance(event, ev.StockReleased):
            _compensation("release_stock", compensation_reason(state, event.reason), mode)
        elif isinstance(event, ev.PaymentVoided):
            _compensation("void_payment", compensation_reason(state, state.reason or ""), mode)
        if kind in (ev.OrderConfirmed, ev.OrderCancelled, ev.OrderRejected):
            emf.count(EMF_ENDED, {"Outcome": state.outcome.value, "Mode": mode})
            total = _seconds(event.occurred_at, t.accepted)
            if total is not None:
                END_TO_END.labels(mode, state.outcome.value).observe(total)
