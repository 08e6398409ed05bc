-- Clockface store, schema version 3: PIN lockout that survives a restart.
-- Failed PIN attempts per employee; after 5 in a row, entry is refused for a period that
-- doubles with every further failure.
CREATE TABLE pin_lockout (
    employee_id     TEXT PRIMARY KEY REFERENCES employees (id) ON DELETE CASCADE,
    failures        INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL
) STRICT;
