-- When the provider itself said the session's user authenticated (an OIDC ID token's
-- auth_time, a SAML AuthnInstant); NULL when it did not say. Account changes (docs/account.md)
-- need this to be recent: a login the provider answered from its own old session, without
-- saying when, proves nothing about who is at the browser now.
ALTER TABLE sso_sessions ADD COLUMN stated_auth_time INTEGER;
