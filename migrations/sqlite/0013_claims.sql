-- The claims pipeline of each provider (issue #17) adds claims of its own to a user: its
-- `static_claims` and `extra_claims`, a JSON object by claim name, written at each login (and
-- upstream refresh) as the identity's and the user's, and emitted in ID tokens and userinfo.
ALTER TABLE users ADD COLUMN extra_claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE identities ADD COLUMN extra_claims TEXT NOT NULL DEFAULT '{}';
