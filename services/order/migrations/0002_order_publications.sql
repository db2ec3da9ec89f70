-- The "outbox published" stage is recorded where it happens: when the relay marks an order's
-- OrderPlaced published (Kafka acknowledged it), in the same statement. A consumer group used to
-- read every order event back from Kafka for this one timestamp (a fetch per produce request).
CREATE FUNCTION record_order_publication() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_publications (order_id, published_at)
    VALUES ((convert_from(NEW.payload, 'UTF8')::jsonb ->> 'aggregate_id')::uuid, NEW.published_at)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER order_published AFTER UPDATE OF published_at ON outbox
    FOR EACH ROW
    WHEN (NEW.event_type = 'OrderPlaced' AND OLD.published_at IS NULL
          AND NEW.published_at IS NOT NULL)
    EXECUTE FUNCTION record_order_publication();
