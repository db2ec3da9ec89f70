-- No consumer keeps a record of the events it applied any more: every effect is idempotent by what
-- it writes (a version guard, a unique key, the sagas' own records), so a redelivered event changes
-- nothing without one. The product saga's row per applied event was 8 of an async order's ~90 WAL
-- records; it stopped writing them, and the table (with 0002's index) has no reader or writer left.
DROP TABLE IF EXISTS processed_events;
