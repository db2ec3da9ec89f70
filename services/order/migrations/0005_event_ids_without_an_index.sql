-- An event's id is derived from its order and version (uuid5 of "order_id/version",
-- services/order/adapters/event_store.py), so the primary key (order_id, version) already makes
-- it unique, and nothing looks an event up by its id. The unique index cost every event a
-- second B-tree insert at a random place (its keys are hashes), one WAL record per event, and
-- it grew with the history: 4M entries at 1M orders, none of them ever read.
ALTER TABLE order_events DROP CONSTRAINT order_events_event_id_key;
