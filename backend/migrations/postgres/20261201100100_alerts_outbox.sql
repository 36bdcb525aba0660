-- Alerts: delivered by the queue (kind `alerts.deliver`, enqueued in the transaction
-- that writes the alert): `sent` lists the channels that accepted it (a JSON array), so a
-- retry sends only to the channels still missing; `attempts` counts delivery attempts.
ALTER TABLE alerts ADD COLUMN sent TEXT NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
