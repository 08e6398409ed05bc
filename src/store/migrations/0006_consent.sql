-- Clockface store, schema version 6: consent that follows the person.
-- How far a face consent reaches: 'device' (this kiosk only) or 'site' (through the backend, to
-- every kiosk of the person's site). Decisions before this version were for this kiosk only.
ALTER TABLE consents ADD COLUMN scope TEXT NOT NULL DEFAULT 'device';
-- Age, no more precise than the law needs: a birth year, or a flag from the backend.
-- NULL means unknown; a person of unknown age is treated as an adult.
ALTER TABLE employees ADD COLUMN birth_year INTEGER;
ALTER TABLE employees ADD COLUMN is_minor INTEGER;
-- A parent's or guardian's consent to a minor's face enrolment, as an admin recorded it.
CREATE TABLE guardian_consents (
    id          INTEGER PRIMARY KEY,
    employee_id TEXT    NOT NULL REFERENCES employees (id) ON DELETE CASCADE,
    guardian    TEXT    NOT NULL,               -- the guardian's name or a reference to them
    relation    TEXT    NOT NULL,               -- "mother", "legal guardian", ...
    method      TEXT    NOT NULL,               -- 'paper' or 'form'
    reference   TEXT    NOT NULL,               -- the paper's or form's reference
    given_ms    INTEGER NOT NULL,               -- when the guardian gave it
    witness     TEXT    NOT NULL,               -- the admin who recorded it
    recorded_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX guardian_consents_by_employee ON guardian_consents (employee_id, id);
-- People whose consent or locally enrolled templates changed since the backend last heard of
-- them; no foreign key, so that a deletion here is told to the backend too.
CREATE TABLE biometric_outbox (
    employee_id TEXT    PRIMARY KEY,
    queued_ms   INTEGER NOT NULL
) STRICT;
