-- Trust (issue #12).
--
-- Where a user's verified address came from: the provider whose assertion verified it, and
-- which was trusted for e-mail (`trust_email`) when it did. Accounts link only into a user
-- whose `email_verified_by` names a provider trusted for e-mail now.
ALTER TABLE users ADD COLUMN email_verified_by TEXT;
-- SAML identities were marked verified whatever the IdP; now only a provider whose
-- `saml.email_verified` setting is on (off by default) vouches for its addresses.
UPDATE identities SET email_verified = 0
    WHERE provider_id IN (SELECT id FROM providers WHERE kind = 'saml');
-- A user's address stays verified only where an identity of a provider trusted for e-mail
-- verified that same address; the others lose the flag.
UPDATE users SET email_verified_by = (
    SELECT i.provider_id FROM identities i JOIN providers p ON p.id = i.provider_id
    WHERE i.user_id = users.id AND i.email = users.email AND i.email_verified = 1
      AND p.trust_email = 1
    ORDER BY i.updated_at DESC LIMIT 1)
    WHERE email_verified = 1;
UPDATE users SET email_verified = 0 WHERE email_verified_by IS NULL;

-- Access tokens of this user minted before this moment (Unix milliseconds) are dead ("sign
-- out everywhere"): /userinfo, /introspect and the broker refuse them.
ALTER TABLE users ADD COLUMN tokens_revoked_at_ms BIGINT;

-- RFC 8707: the resources a client may name (JSON list); none by default.
ALTER TABLE clients ADD COLUMN allowed_resources TEXT NOT NULL DEFAULT '[]';

-- The SAML ACS leaves the verified identity here, sealed to the row, for the browser's
-- same-site GET that proves it is the browser that started the login.
ALTER TABLE pending_authorizations ADD COLUMN completed_identity BYTEA;

-- The one successor of a rotated refresh token, sealed, while the grace window lasts: a retry
-- inside the window gets this same token. `id` is the hex SHA-256 digest of the rotated token.
CREATE TABLE refresh_successors (
    id         TEXT PRIMARY KEY,
    successor  BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_successors_expires ON refresh_successors (expires_at);
