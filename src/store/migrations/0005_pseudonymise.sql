-- Clockface store, schema version 5: pseudonymised check-ins.
-- With retention.pseudonymise_departed, a check-in of someone no longer on the roster is reduced,
-- once the backend has acknowledged it, to a pseudonym: its signed bytes are removed and their
-- SHA-256 kept here, so the chain still links through it; the backend holds the full record.
ALTER TABLE records ADD COLUMN redacted_hash BLOB;
