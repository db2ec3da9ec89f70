-- The order service's tables. The shared outbox/processed_events migration is applied first.

-- Event store: every order's events, one stream per order, append-only. The primary key makes
-- the version an optimistic lock: two writers appending at the same version cannot both commit.
CREATE TABLE order_events (
    order_id    uuid        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    event_id    uuid        NOT NULL UNIQUE,  -- the id of the event's envelope on Kafka
    type        text        NOT NULL,
    data        jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, version)
);

CREATE FUNCTION order_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_are_append_only();

-- The projection the API reads: one row per order, a pure function of its stream (rebuildable
-- with `shopstream rebuild-projections`), written in the same transaction as the events.
CREATE TABLE orders (
    id                      uuid        PRIMARY KEY,
    customer_id             uuid        NOT NULL,
    status                  text        NOT NULL,
    mode                    text        NOT NULL,
    outcome                 text        NOT NULL,
    version                 integer     NOT NULL,
    total_cents             bigint      NOT NULL,
    lines                   jsonb       NOT NULL,
    shipping_address        jsonb       NOT NULL,
    reserved                jsonb       NOT NULL,
    released                jsonb       NOT NULL,
    payment                 jsonb,
    stock_rejected          jsonb,
    payment_declined_reason text,
    reason                  text,
    cancelled_by            text,
    history                 jsonb       NOT NULL,
    timestamps              jsonb       NOT NULL,
    idempotency_key         text,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_by_customer_status ON orders (customer_id, status, created_at DESC, id DESC);
CREATE INDEX orders_recent ON orders (created_at DESC, id DESC);
-- Orders still in flight, for the sync-order recovery sweep and the console.
CREATE INDEX orders_open ON orders (updated_at)
    WHERE status NOT IN ('CONFIRMED', 'CANCELLED', 'REJECTED');

-- Idempotency-Key: a customer's key names one order and the request that created it.
CREATE TABLE idempotency_keys (
    customer_id uuid        NOT NULL,
    key         text        NOT NULL,
    order_id    uuid        NOT NULL,
    fingerprint text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (customer_id, key)
);

-- Local replica of the product catalog, fed by product-events (version-guarded upserts). A
-- deleted product stays as a tombstone so that a late, older event cannot bring it back.
CREATE TABLE catalog (
    product_id  uuid        PRIMARY KEY,
    name        text,
    price_cents bigint,
    deleted     boolean     NOT NULL DEFAULT false,
    version     integer     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- When each order's OrderPlaced reached Kafka (the relay's produce time), for the "outbox
-- published" stage. Derived from Kafka, not from the event store, so kept apart from `orders`.
CREATE TABLE order_publications (
    order_id     uuid        PRIMARY KEY,
    published_at timestamptz NOT NULL
);
