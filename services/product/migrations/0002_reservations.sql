-- Stock held for orders. A reservation is all-or-nothing per order: every line is held, or none.
CREATE TABLE reservations (
    order_id         uuid        NOT NULL,
    product_id       uuid        NOT NULL,
    quantity         integer     NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint      NOT NULL,
    status           text        NOT NULL CHECK (status IN ('held', 'released', 'committed')),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX reservations_held ON reservations (status) WHERE status = 'held';

-- Orders whose reservation was refused, so a redelivered request gets the same answer.
CREATE TABLE reservation_refusals (
    order_id   uuid        PRIMARY KEY,
    product_id uuid,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
