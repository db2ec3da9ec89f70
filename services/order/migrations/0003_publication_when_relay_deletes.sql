-- The "outbox published" stage is recorded where it happens: when the relay deletes an order's
-- OrderPlaced from the outbox after Kafka acknowledged it, in the same statement. Only the relay's
-- session says it is publishing (shopstream.relay); any other delete is not a publication.
-- (Until shared migration 0003 this was a trigger on the outbox's published_at, which is gone.)
CREATE OR REPLACE FUNCTION record_order_publication() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_publications (order_id, published_at)
    VALUES ((convert_from(OLD.payload, 'UTF8')::jsonb ->> 'aggregate_id')::uuid, now())
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER order_published AFTER DELETE ON outbox
    FOR EACH ROW
    WHEN (OLD.event_type = 'OrderPlaced'
          AND current_setting('shopstream.relay', true) = 'publishing')
    EXECUTE FUNCTION record_order_publication();
