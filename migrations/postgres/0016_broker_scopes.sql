-- Incremental upstream scopes through the broker (docs/broker.md). A provider lists the scopes
-- a service may ask the user to add to the stored grant (JSON list, like scopes).
ALTER TABLE providers ADD COLUMN incremental_scopes TEXT NOT NULL DEFAULT '[]';
