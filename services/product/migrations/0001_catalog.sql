CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE products (
    id           uuid        PRIMARY KEY,
    sku          text        NOT NULL,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    category     text        NOT NULL,
    brand        text        NOT NULL,
    price_cents  bigint      NOT NULL CHECK (price_cents >= 0),
    stock        integer     NOT NULL CHECK (stock >= 0),
    version      integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- name weighs more than description in the relevance ranking
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', description), 'B')
    ) STORED
);

CREATE UNIQUE INDEX products_sku ON products (sku);
CREATE INDEX products_search ON products USING gin (search);
CREATE INDEX products_name_trgm ON products USING gin (name gin_trgm_ops);
CREATE INDEX products_newest ON products (created_at DESC, id DESC);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_name ON products (name, id);
CREATE INDEX products_category_price ON products (category, price_cents, id);
CREATE INDEX products_brand ON products (brand);
