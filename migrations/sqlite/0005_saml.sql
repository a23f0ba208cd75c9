-- SAML service provider (issue 5).

-- Assertion IDs already accepted, kept until the assertion expires: a replay hits the key.
-- `id` is "<IdP entity ID> <assertion ID>" so one IdP cannot burn another's IDs.
CREATE TABLE saml_assertion_ids (
    id         TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX saml_assertion_ids_expires ON saml_assertion_ids (expires_at);

-- AuthnRequests sent and not yet answered; a Response's InResponseTo consumes its row.
CREATE TABLE saml_requests (
    id         TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX saml_requests_expires ON saml_requests (expires_at);
