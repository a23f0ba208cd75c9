-- Upstream identity providers. `client_secret` is sealed (bound to the row id); `settings` holds
-- kind-specific options as JSON (claim mapping...). Rows from portico.toml have
-- managed_by_config = 1 and are read-only elsewhere.
CREATE TABLE providers (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    enabled           BIGINT NOT NULL DEFAULT 1,
    client_id         TEXT NOT NULL DEFAULT '',
    client_secret     BYTEA,
    issuer            TEXT,
    scopes            TEXT NOT NULL DEFAULT '',
    settings          TEXT NOT NULL DEFAULT '{}',
    email_domains     TEXT NOT NULL DEFAULT '',
    trust_email       BIGINT NOT NULL DEFAULT 0,
    managed_by_config BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- Portico users. Claims mirror the identity used at the last login.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT,
    email_verified BIGINT NOT NULL DEFAULT 0,
    name           TEXT,
    picture        TEXT,
    groups         TEXT NOT NULL DEFAULT '[]',
    disabled       BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_login_at  BIGINT
);
CREATE INDEX users_email ON users (email);

-- A user's identity at one provider. `refresh_token` is the sealed upstream refresh token the
-- refresh capability uses.
CREATE TABLE identities (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id    TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT,
    email_verified BIGINT NOT NULL DEFAULT 0,
    name           TEXT,
    picture        TEXT,
    groups         TEXT NOT NULL DEFAULT '[]',
    refresh_token  BYTEA,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (provider_id, subject)
);
CREATE INDEX identities_user ON identities (user_id);

-- Downstream applications. `secret_digest` is the SHA-256 of the client secret; lists are JSON.
CREATE TABLE clients (
    client_id                 TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    client_type               TEXT NOT NULL,
    secret_digest             BYTEA,
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types               TEXT NOT NULL DEFAULT '[]',
    scopes                    TEXT NOT NULL DEFAULT '[]',
    allowed_providers         TEXT NOT NULL DEFAULT '[]',
    id_token_alg              TEXT NOT NULL DEFAULT 'RS256',
    access_token_ttl          BIGINT NOT NULL,
    id_token_ttl              BIGINT NOT NULL,
    refresh_token_ttl         BIGINT NOT NULL,
    managed_by_config         BIGINT NOT NULL DEFAULT 0,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);

-- An /authorize request waiting for the user to log in upstream. `request` is the validated
-- downstream request (JSON). `upstream_state_digest` finds the row from the callback; the
-- connector's secret values (nonce, PKCE verifier) are sealed in `upstream_secret`;
-- `browser_digest` binds the row to the browser's login cookie.
CREATE TABLE pending_authorizations (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    request               TEXT NOT NULL,
    browser_digest        BYTEA NOT NULL,
    provider_id           TEXT,
    upstream_state_digest BYTEA,
    upstream_secret       BYTEA,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX pending_authorizations_state ON pending_authorizations (upstream_state_digest);

-- SSO sessions behind the session cookie (found by the cookie's digest).
CREATE TABLE sso_sessions (
    id           TEXT PRIMARY KEY,
    token_digest BYTEA NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    identity_id  TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);

-- Authorization codes, by digest. `used_at` makes them single-use; `access_jti` and the refresh
-- family issued from a code are revoked when it is presented again.
CREATE TABLE auth_codes (
    code_digest    BYTEA PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    identity_id    TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    resource       TEXT,
    auth_time      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    access_jti     TEXT,
    access_exp     BIGINT,
    family_id      TEXT
);

-- Refresh tokens, by digest. Each rotation adds a row to the family; presenting a rotated
-- token after the grace window revokes the family.
CREATE TABLE refresh_tokens (
    token_digest BYTEA PRIMARY KEY,
    family_id    TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    identity_id  TEXT NOT NULL,
    session_id   TEXT,
    scope        TEXT NOT NULL,
    resource     TEXT,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    rotated_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Revoked access token ids, kept until the token would have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
