-- An order's row is rewritten at each step of its saga. While any index covers a column the
-- step changes (status, updated_at, or a partial index's predicate), PostgreSQL writes the new
-- row version elsewhere and adds it to every index of the table: five index entries per step,
-- and as many dead ones for vacuum. Here no index covers what changes while an order is in
-- flight, so those steps are HOT updates (the new version beside the old on the same page, no
-- index touched); only the step that ends the order changes `outcome`, the open index's
-- predicate. Room is left on each page for them.
DROP INDEX orders_by_customer_status;  -- a customer's orders by status: orders_by_customer + filter
DROP INDEX orders_open;
-- Orders still in flight (the sweep's follow-ups and the gauge): `outcome` changes only when an
-- order ends, `created_at` never.
CREATE INDEX orders_open ON orders (created_at) WHERE outcome = 'in_progress';
ALTER TABLE orders SET (fillfactor = 75);
