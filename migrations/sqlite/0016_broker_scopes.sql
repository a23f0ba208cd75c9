-- Incremental upstream scopes through the broker (docs/broker.md). A provider lists the scopes
-- a service may ask the user to add to the stored grant (JSON list, like scopes).
ALTER TABLE providers ADD COLUMN incremental_scopes TEXT NOT NULL DEFAULT '[]';

-- An upgrade ticket: made by the broker for one user's identity at one provider and the scopes
-- to ask for; found by the digest of the ticket in its URL until the user's visit claims it
-- (ticket_digest cleared: single use), then by the digest of the upstream state until the
-- callback takes it. browser_digest binds the callback to the browser that claimed it.
-- upstream_secret is sealed to the row (store::sealed). The janitor deletes expired rows;
-- deleting the identity (its user or provider) deletes its tickets.
CREATE TABLE broker_upgrades (
    id                    TEXT PRIMARY KEY,
    ticket_digest         BLOB UNIQUE,
    user_id               TEXT NOT NULL,
    identity_id           TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    provider_id           TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    requested             TEXT NOT NULL,
    return_uri            TEXT,
    browser_digest        BLOB,
    upstream_state_digest BLOB UNIQUE,
    upstream_secret       BLOB,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL
);
CREATE INDEX broker_upgrades_expires ON broker_upgrades (expires_at);
