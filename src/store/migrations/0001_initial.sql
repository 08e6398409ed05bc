-- Clockface store, schema version 1.
-- Forward-only: a later version adds 0002_*.sql; this file never changes once released.

-- Small key/value facts about this store: device identity, public key, key check values.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Signed check-in records and failed attempts. `bytes` is the canonical signed record and the
-- only source of truth; the other columns are copies for querying, cross-checked by verify.
CREATE TABLE records (
    seq          INTEGER PRIMARY KEY,           -- per-device sequence number, from 1
    uuid         BLOB    NOT NULL UNIQUE,       -- UUIDv7, the backend's idempotency key
    wall_ms      INTEGER NOT NULL,
    employee_id  TEXT    NOT NULL,              -- '' when nobody was identified
    outcome      INTEGER NOT NULL,              -- 1 accepted, 2 rejected
    bytes        BLOB    NOT NULL,
    synced_at_ms INTEGER                        -- backend acknowledgement; NULL = still queued
) STRICT;
CREATE INDEX records_by_time ON records (wall_ms);
CREATE INDEX records_by_employee ON records (employee_id, wall_ms);
CREATE INDEX records_outbox ON records (seq) WHERE synced_at_ms IS NULL;

-- Signed, hash-chained audit log of admin actions and biometric lifecycle events.
CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,
    uuid         BLOB    NOT NULL UNIQUE,
    wall_ms      INTEGER NOT NULL,
    action       TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    synced_at_ms INTEGER
) STRICT;
CREATE INDEX audit_by_subject ON audit (subject);

-- The roster: who may check in here.
CREATE TABLE employees (
    id           TEXT PRIMARY KEY,
    display_name TEXT    NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    is_admin     INTEGER NOT NULL DEFAULT 0,
    pin_hash     TEXT,                          -- argon2id PHC string; NULL = no PIN set
    updated_ms   INTEGER NOT NULL
) STRICT;

-- Badge ids (normalised) that name an employee.
CREATE TABLE badges (
    badge_id    TEXT PRIMARY KEY,
    employee_id TEXT NOT NULL REFERENCES employees (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX badges_by_employee ON badges (employee_id);

-- Every consent decision, newest last; the latest row is in force.
CREATE TABLE consents (
    id           INTEGER PRIMARY KEY,
    employee_id  TEXT    NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    given        INTEGER NOT NULL,              -- 1 accepted, 0 declined or withdrawn
    text_version TEXT    NOT NULL,
    witness      TEXT    NOT NULL,              -- id of the admin who witnessed it
    at_ms        INTEGER NOT NULL
) STRICT;
CREATE INDEX consents_by_employee ON consents (employee_id, id);

-- Face templates, sealed with XChaCha20-Poly1305 under data.key. Never images.
CREATE TABLE templates (
    id          INTEGER PRIMARY KEY,
    employee_id TEXT    NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    model       TEXT    NOT NULL,               -- embedder that produced it
    dims        INTEGER NOT NULL,
    sealed      BLOB    NOT NULL,               -- 24-byte nonce || ciphertext+tag
    created_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX templates_by_employee ON templates (employee_id);

-- Outbox and sync bookkeeping: last success, last error, backend cursor.
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
