-- Clockface store, schema version 7: what the HR-terminal protocols need to keep.
-- New check-ins are written in record format v2 (CFR2), whose direction byte carries every punch
-- type (in, out, break out/in, overtime in/out); v1 rows stay as they were signed.
--
-- The small user number ZK clients know each employee by: assigned once, never reused while
-- the employee is on the roster, so an HR tool's mapping does not shift.
CREATE TABLE zk_uids (
    employee_id TEXT    PRIMARY KEY REFERENCES employees (id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL UNIQUE CHECK (uid BETWEEN 1 AND 65535)
) STRICT;
-- "Clear attendance" from a ZK client deletes nothing signed: it moves that client's read-up-to
-- cursor (the last record seq it cleared), and later reads start after it.
CREATE TABLE zk_cursors (
    client     TEXT    PRIMARY KEY,             -- the client's address (IP)
    seq        INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
-- The ADMS outbox: the last record seq the ADMS server answered OK for.
CREATE TABLE adms_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    sent_seq   INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
