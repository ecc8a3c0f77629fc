-- The metrics component, version 1: one row per version of an observation,
-- stored so that a window's aggregate can be answered in SQL.
--
-- Instants are integers: nanoseconds since 1970-01-01T00:00:00Z (the
-- resolution of the crate's times), so only 1678-01-01 to 2261-12-31 can be
-- stored. A date-only stamp means local midnight in the *reading* contract's
-- time zone, so it is kept as its day number (days since 1970-01-01) and
-- placed by the query: exactly one of each pair of columns is set.
CREATE TABLE outcome_observations (
    row_id       INTEGER PRIMARY KEY,            -- the order rows were written in
    customer     TEXT    NOT NULL DEFAULT '',    -- '': every customer
    series       TEXT    NOT NULL CHECK (series <> ''),
    id           TEXT    CHECK (id <> ''),       -- NULL: no id
    at_ns        INTEGER,                        -- timestamp: an instant
    at_day       INTEGER,                        --   or a date
    recorded_ns  INTEGER,                        -- recorded_at: an instant
    recorded_day INTEGER,                        --   or a date; both NULL: the timestamp
    value        TEXT    NOT NULL,               -- the exact decimal as written: 12.50
    value_key    BLOB    NOT NULL,               -- order-preserving key of the number
    value_scale  INTEGER NOT NULL,               -- digits after the point in value
    void         INTEGER NOT NULL DEFAULT 0 CHECK (void IN (0, 1)),
    dimensions   TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings, keys sorted
    file         TEXT,                           -- origin: the file the row came from
    line         INTEGER,                        --   and its line there
    CHECK ((at_ns IS NULL) <> (at_day IS NULL)),
    CHECK (recorded_ns IS NULL OR recorded_day IS NULL)
);

-- A window: one series of one customer (or of the shared rows, ''), by
-- instant or by day.
CREATE INDEX outcome_observations_at
    ON outcome_observations (customer, series, at_ns) WHERE at_ns IS NOT NULL;
CREATE INDEX outcome_observations_day
    ON outcome_observations (customer, series, at_day) WHERE at_day IS NOT NULL;

-- Version resolution: every version of one id, with the columns that say
-- when it was recorded (the timestamp's when recorded_at is absent).
CREATE INDEX outcome_observations_versions
    ON outcome_observations (customer, series, id, recorded_ns, recorded_day, at_ns, at_day)
    WHERE id IS NOT NULL;

-- A row is identified by its origin, so importing a file again adds only
-- its new lines (rows without a line are never matched: NULLs differ).
CREATE UNIQUE INDEX outcome_observations_origin ON outcome_observations (file, line);

-- Every dimension the data has, including columns empty in every row, so a
-- filter on one is not an error.
CREATE TABLE outcome_dimensions (
    name TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
