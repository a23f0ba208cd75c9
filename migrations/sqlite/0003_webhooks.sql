-- Webhook endpoints. `secret` is a sealed `whsec_…` string; after a rotation `previous_secret`
-- (also sealed) keeps signing until `previous_secret_until_ms`. `managed` = 1 for endpoints
-- declared in portico.toml (read-only elsewhere). `failing_since_ms` marks the first failed
-- attempt of an unbroken run of failures; a success clears it.
CREATE TABLE webhook_endpoints (
    id                       TEXT PRIMARY KEY,
    url                      TEXT NOT NULL,
    description              TEXT NOT NULL DEFAULT '',
    enabled                  INTEGER NOT NULL DEFAULT 1,
    managed                  INTEGER NOT NULL DEFAULT 0,
    secret                   BLOB NOT NULL,
    previous_secret          BLOB,
    previous_secret_until_ms INTEGER,
    failing_since_ms         INTEGER,
    disabled_reason          TEXT,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);

-- The event types each endpoint wants.
CREATE TABLE webhook_subscriptions (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
);
CREATE INDEX webhook_subscriptions_type ON webhook_subscriptions (event_type);

-- One row per (event, endpoint), written in the event's transaction. A worker claims a due row
-- by setting a lease (`lease_token`, `lease_until_ms`); a row whose lease ran out is due again.
-- `attempts` counts the attempts of the current round (a replay starts a new round).
CREATE TABLE webhook_deliveries (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id           TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id        TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    lease_token        TEXT,
    lease_until_ms     INTEGER,
    last_attempt_at_ms INTEGER,
    last_status_code   INTEGER,
    last_error         TEXT,
    created_at         INTEGER NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    completed_at       INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (endpoint_id, completed_at) WHERE status = 'failed';

-- The delivery log: every attempt, its outcome and the start of the response.
CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id   INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    response_body TEXT,
    error         TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

