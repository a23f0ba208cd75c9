-- Values in `meta` are sealed with the master key (see crypto::sealer); the first row written is
-- the key-check value that lets a wrong master key be refused at start.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- JWT signing keys. `private_key` is a sealed PKCS#8 document. A key is active while
-- `retired_at` is NULL, and published in the JWKS until `publish_until` (NULL: no limit).
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    private_key   BLOB NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER
);
CREATE INDEX signing_keys_alg_active ON signing_keys (alg, retired_at);

-- The transactional outbox: an event is written in the same transaction as the change it
-- reports; the webhook dispatcher delivers it. `body` is the exact JSON sent to receivers.
CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_type_created ON events (type, created_at);
