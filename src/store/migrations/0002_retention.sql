-- Clockface store, schema version 2: retention.
-- When the oldest records of a chain are purged, the chain keeps an anchor: the sequence number
-- and hash of the last purged entry, so verification and new appends continue the same chain.
CREATE TABLE chain_anchor (
    chain        TEXT PRIMARY KEY,              -- 'records' or 'audit'
    seq          INTEGER NOT NULL,
    hash         BLOB    NOT NULL,
    purged_at_ms INTEGER NOT NULL
) STRICT;
