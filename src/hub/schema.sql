-- clockface-hub database, schema version 1. The hub is a reference backend: it keeps what the
-- protocol needs and what an attendance office asks for (timesheets, chain reports).

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Paired kiosks. Only a hash of the bearer token is kept.
CREATE TABLE IF NOT EXISTS devices (
    id            TEXT PRIMARY KEY,
    public_key    BLOB    NOT NULL,
    token_sha256  BLOB    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    site          TEXT    NOT NULL,
    paired_ms     INTEGER NOT NULL,
    last_seen_ms  INTEGER,
    heartbeat     TEXT,
    clock_skew_ms INTEGER
) STRICT;

-- Which employees each device has been sent, so that a person who leaves a site (or the
-- roster) is deleted at exactly the kiosks that hold them, and no other kiosk learns of them.
CREATE TABLE IF NOT EXISTS delivered (
    device_id   TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    PRIMARY KEY (device_id, employee_id)
) STRICT;

-- Devices an admin unpaired (`clockface-hub device unpair`): their id may pair again with any key.
CREATE TABLE IF NOT EXISTS unpaired (
    device_id TEXT PRIMARY KEY,
    at_ms     INTEGER NOT NULL
) STRICT;

-- The hub's own audit log: pairing, re-pairing and unpairing of devices.
CREATE TABLE IF NOT EXISTS hub_audit (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    device_id TEXT    NOT NULL,
    detail    TEXT    NOT NULL
) STRICT;

-- One-time pairing codes (hashed), each for one site.
CREATE TABLE IF NOT EXISTS pairing_codes (
    code_sha256 BLOB PRIMARY KEY,
    site        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    used_by     TEXT
) STRICT;

-- Verified signed entries of every device's two chains ('checkins' and 'audit').
CREATE TABLE IF NOT EXISTS entries (
    device_id   TEXT    NOT NULL,
    chain       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    uuid        BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    prev_hash   BLOB    NOT NULL,
    bytes       BLOB    NOT NULL,
    wall_ms     INTEGER NOT NULL,
    employee_id TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, chain, seq),
    UNIQUE (chain, uuid)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_time ON entries (chain, wall_ms);

-- End of each chain's gap-free, linked prefix.
CREATE TABLE IF NOT EXISTS heads (
    device_id TEXT    NOT NULL,
    chain     TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    hash      BLOB    NOT NULL,
    PRIMARY KEY (device_id, chain)
) STRICT;

-- Entries that contradict what is stored: forks (same seq, other bytes) and broken links.
CREATE TABLE IF NOT EXISTS conflicts (
    id        INTEGER PRIMARY KEY,
    device_id TEXT    NOT NULL,
    chain     TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    hash      BLOB    NOT NULL,
    at_ms     INTEGER NOT NULL,
    UNIQUE (device_id, chain, seq, hash)
) STRICT;

-- The roster served to kiosks. Deleted employees stay as tombstones so kiosks learn of it.
CREATE TABLE IF NOT EXISTS employees (
    id              TEXT PRIMARY KEY,
    display_name    TEXT    NOT NULL,
    active          INTEGER NOT NULL,
    is_admin        INTEGER NOT NULL,
    consent_given   INTEGER,
    consent_version TEXT,
    deleted         INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE IF NOT EXISTS badges (
    badge_id    TEXT PRIMARY KEY,
    employee_id TEXT NOT NULL REFERENCES employees (id) ON DELETE CASCADE
) STRICT;

-- Face templates, sealed (XChaCha20-Poly1305, 24-byte nonce || ciphertext+tag) under the
-- template key file, bound to employee and model. Kept only while the person's consent is
-- given for scope 'site'. origin_device: the kiosk that enrolled it (it is not sent back
-- there); NULL for templates imported from HR.
CREATE TABLE IF NOT EXISTS sealed_templates (
    id            INTEGER PRIMARY KEY,
    employee_id   TEXT NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    model         TEXT NOT NULL,
    sealed        BLOB NOT NULL,
    origin_device TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS sealed_templates_by_employee ON sealed_templates (employee_id);

-- A site's own policy (its minor age, consent scopes, ...), over the one in meta 'policy'.
CREATE TABLE IF NOT EXISTS site_policies (
    site   TEXT PRIMARY KEY,
    policy TEXT NOT NULL
) STRICT;

-- Security and health events of the fleet (see db/fleet.rs), each once: `dedupe` tells a
-- repeat of one event (a retried upload, the same heartbeat) from a new one.
CREATE TABLE IF NOT EXISTS alerts (
    id        INTEGER PRIMARY KEY,
    device_id TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    dedupe    TEXT    NOT NULL,
    UNIQUE (device_id, kind, dedupe)
) STRICT;
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (at_ms);

-- Check-ins refused for liveness, per kiosk, for the repeated-failures alert.
CREATE TABLE IF NOT EXISTS liveness_failures (
    device_id TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    wall_ms   INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq)
) STRICT;

-- Webhooks (see db/webhooks.rs): subscriptions with their cursor and the batch under way, the
-- events waiting for them, and the batches given up on (their events kept for redelivery).
CREATE TABLE IF NOT EXISTS webhooks (
    id              INTEGER PRIMARY KEY,
    url             TEXT    NOT NULL,
    secret          BLOB    NOT NULL,
    events          TEXT    NOT NULL,
    created_ms      INTEGER NOT NULL,
    cursor          INTEGER NOT NULL,
    batch_last      INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    delivered       INTEGER NOT NULL DEFAULT 0
) STRICT;

-- AUTOINCREMENT: ids are cursors, and must never be handed out again after a prune.
CREATE TABLE IF NOT EXISTS webhook_events (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT    NOT NULL,
    at_ms INTEGER NOT NULL,
    body  TEXT    NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS webhook_dead (
    id          INTEGER PRIMARY KEY,
    webhook_id  INTEGER NOT NULL,
    first_event INTEGER NOT NULL,
    last_event  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    redeliver   INTEGER NOT NULL DEFAULT 0
) STRICT;
