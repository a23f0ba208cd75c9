-- Indexes for the admin dashboard (src/admin/dashboard.rs); additive only.
-- Logins per provider over a time window use `events_type_created` (type, created_at) from 0001
-- and read the provider from the matching rows' bodies. (An index on the JSON expression would
-- not spare those reads: SQLite still loads the row to evaluate it, so it would only cost writes.)
-- Deliveries per endpoint and status over a time window, counted from the index alone.
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint_created
    ON webhook_deliveries (endpoint_id, created_at, status);
