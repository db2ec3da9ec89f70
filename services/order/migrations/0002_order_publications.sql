-- Was: the "outbox published" trigger on the outbox's published_at column. Shared migration 0003
-- dropped that column (rows now leave the outbox when published) and with it this trigger; 0003
-- here records the stage on the relay's delete. Kept, empty, so every database has the same versions.
SELECT 1;
