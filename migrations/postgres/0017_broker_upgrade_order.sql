-- Broker upgrade tickets in the order they were made (milliseconds): the per-identity cap
-- drops the oldest, and several are often made within one second.
ALTER TABLE broker_upgrades ADD COLUMN created_at_ms BIGINT NOT NULL DEFAULT 0;
