-- Admin accounts: argon2id PHC strings; e-mails stored lower-cased.
CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Signed-in browser sessions. Only the SHA-256 of the cookie value is stored; the CSRF
-- synchronizer token lives beside it and is only useful together with the cookie.
CREATE TABLE admin_sessions (
    token_digest BLOB PRIMARY KEY,
    admin_id     TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ip           TEXT
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

-- Failed sign-ins per key (`account:<email>` or `ip:<address>`): the growing delay and the lockout.
CREATE TABLE admin_sign_in_throttle (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    blocked_until_ms INTEGER NOT NULL
);

-- Admin API tokens, stored as SHA-256 digests; `hint` is the readable start shown in lists.
CREATE TABLE admin_api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_digest BLOB NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Who changed what, when and from where. The webhooks migration may have made this table first
-- with the same columns; both define it this way.
CREATE TABLE IF NOT EXISTS audit_log (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    details    TEXT NOT NULL,
    ip         TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_created ON audit_log (created_at, id);
CREATE INDEX IF NOT EXISTS audit_log_action_created ON audit_log (action, created_at);
