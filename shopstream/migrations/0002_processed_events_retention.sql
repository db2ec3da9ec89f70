-- The records of applied events are kept only as long as a redelivery can come (the relay prunes
-- older ones, see Settings.processed_events_retention_hours): the index finds them without a scan.
CREATE INDEX IF NOT EXISTS processed_events_processed_at ON processed_events (processed_at);
