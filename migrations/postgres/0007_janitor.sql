-- Indexes the janitor deletes by, so each batch finds expired rows without a table scan.
CREATE INDEX IF NOT EXISTS pending_authorizations_expires ON pending_authorizations (expires_at);
CREATE INDEX IF NOT EXISTS sso_sessions_expires ON sso_sessions (expires_at);
CREATE INDEX IF NOT EXISTS auth_codes_expires ON auth_codes (expires_at);
CREATE INDEX IF NOT EXISTS refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX IF NOT EXISTS revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
CREATE INDEX IF NOT EXISTS events_created ON events (created_at);
