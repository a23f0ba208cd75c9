-- The token vault: an identity's upstream tokens, each sealed to the identity row
-- (refresh_token already is, since 0002). `token_meta` is sealed JSON {expires_at, scope}.
-- `refresh_lease_until` is the lease one instance claims (conditional UPDATE) to make the one
-- upstream refresh; `needs_login` is set when the upstream grant is gone (invalid_grant).
ALTER TABLE identities ADD COLUMN access_token BLOB;
ALTER TABLE identities ADD COLUMN id_token BLOB;
ALTER TABLE identities ADD COLUMN token_meta BLOB;
ALTER TABLE identities ADD COLUMN refresh_lease_until INTEGER;
ALTER TABLE identities ADD COLUMN needs_login INTEGER NOT NULL DEFAULT 0;
