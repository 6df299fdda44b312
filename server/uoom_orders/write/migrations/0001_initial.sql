-- The write model: orders and their items, the transactional outbox, and the
-- responses of mutating requests kept for AIP-155 retries.

CREATE TABLE orders (
    order_id                uuid PRIMARY KEY,
    customer_id             uuid NOT NULL,
    restaurant_id           uuid NOT NULL,
    channel_id              text NOT NULL,
    status                  text NOT NULL CHECK (status IN (
                                'PENDING', 'CONFIRMED', 'PREPARING', 'READY_FOR_PICKUP',
                                'OUT_FOR_DELIVERY', 'DELIVERED', 'CANCELLED')),
    currency_code           char(3) NOT NULL,
    total_minor             bigint NOT NULL CHECK (total_minor >= 0),
    estimated_delivery_time timestamptz,
    tracking_code           text NOT NULL,
    delivery_latitude       double precision NOT NULL,
    delivery_longitude      double precision NOT NULL,
    delivery_address        text NOT NULL,
    delivery_city           text NOT NULL,
    delivery_postal_code    text NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    version                 bigint NOT NULL CHECK (version >= 1)
);

-- Keyset pagination, newest first: (updated_at, order_id) is unique and totally ordered.
CREATE INDEX orders_by_customer ON orders (customer_id, updated_at DESC, order_id DESC);
CREATE INDEX orders_by_restaurant ON orders (restaurant_id, updated_at DESC, order_id DESC);

CREATE TABLE order_items (
    order_id          uuid NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no           integer NOT NULL,
    item_id           text NOT NULL,
    name              text NOT NULL,
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_minor  bigint NOT NULL CHECK (unit_price_minor >= 0),
    total_minor       bigint NOT NULL CHECK (total_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- One row per committed change. `xid` lets the relay see which transactions may still
-- commit rows with lower ids (ids are taken at insert, not at commit).
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id      uuid NOT NULL UNIQUE,
    order_id      uuid NOT NULL,
    event_type    text NOT NULL,
    version       bigint NOT NULL,
    payload       bytea NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- AIP-155: the first response to a request_id is returned to its retries.
CREATE TABLE request_log (
    request_id    uuid PRIMARY KEY,
    method        text NOT NULL,
    request_hash  bytea NOT NULL,
    response      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
