-- Clockface store, schema version 4: sync with the backend.
-- Entries the backend refused (a fork, or a signature it could not verify) leave the outbox but
-- stay here with the backend's reason, never purged, for an admin to look into.
ALTER TABLE records ADD COLUMN sync_rejected TEXT;
ALTER TABLE audit ADD COLUMN sync_rejected TEXT;
CREATE INDEX audit_outbox ON audit (seq) WHERE synced_at_ms IS NULL;
-- Where a template came from: 'local' (enrolled at this kiosk) or 'backend' (roster download),
-- so a new roster replaces only what the backend sent before.
ALTER TABLE templates ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
