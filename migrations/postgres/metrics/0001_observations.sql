-- The metric store in PostgreSQL, version 1: one row per version of an
-- observation, in the columns of the CSV format, with native types.
-- See src/metric/postgres.rs for how the queries use it.

CREATE TABLE outcome_observations (
    -- Import order: the order in which rows count as "pushed" (the first
    -- of equal versions is the one kept; conflicts name rows in this order).
    row_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- '' for a row of every customer.
    customer        TEXT NOT NULL DEFAULT '',
    series          TEXT NOT NULL CHECK (series <> ''),
    -- The timestamp: an instant, or a date meaning local midnight in the
    -- reading contract's zone (exactly one of the two).
    timestamp_at    TIMESTAMPTZ,
    timestamp_day   DATE,
    -- Exact, with its scale: 1.50 stays 1.50.
    value           NUMERIC NOT NULL,
    -- NULL: no id (every such row counts).
    id              TEXT CHECK (id <> ''),
    -- When this version became known, as the timestamp; both NULL: the
    -- timestamp.
    recorded_at     TIMESTAMPTZ,
    recorded_day    DATE,
    void            BOOLEAN NOT NULL DEFAULT false,
    -- The other columns, as a JSON object of strings.
    dimensions      JSONB NOT NULL DEFAULT '{}',
    -- Where the row came from: the file's absolute path and line.
    origin_file     TEXT,
    origin_line     BIGINT,
    -- The timestamp's approximate UTC second (an instant's, or a date's UTC
    -- midnight): a date's true instant lies within two days of it in any
    -- zone, so windows widened by two days find rows through an index.
    approx_key      BIGINT NOT NULL,
    CHECK ((timestamp_at IS NULL) <> (timestamp_day IS NULL)),
    CHECK (recorded_at IS NULL OR recorded_day IS NULL),
    CHECK (jsonb_typeof(dimensions) = 'object')
);

-- A window: the rows of one series and customer (own or '') by time.
CREATE INDEX outcome_observations_window
    ON outcome_observations (series, customer, approx_key);
-- Versions: every version of an id, and a customer's ids (check_versions).
CREATE INDEX outcome_observations_versions
    ON outcome_observations (customer, series, id) WHERE id IS NOT NULL;
-- Idempotent imports: a line of a file is imported once. Rows without a
-- FILE:LINE origin (NULLs are distinct) are always appended.
CREATE UNIQUE INDEX outcome_observations_origin
    ON outcome_observations (origin_file, origin_line);

-- The dimension columns of every import, so that a filter on a column
-- empty in every row is not an error (as with the CSV source).
CREATE TABLE outcome_dimensions (
    name TEXT PRIMARY KEY
);

-- The instant a date means in zone tz, exactly as the crate computes it
-- (period::local_midnight): local midnight; the earlier of two when the
-- clock went back over it; the first instant after the gap when the clock
-- skipped it. Slow path of outcome_local_midnight: only for dates near a
-- change of offset.
CREATE FUNCTION outcome_local_midnight_exact(d date, tz text) RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    m      timestamp := d::timestamp;
    t      timestamptz := d::timestamp AT TIME ZONE tz;
    best   timestamptz;
    probe  timestamptz;
    cand   timestamptz;
    before bigint;
    after  bigint;
    middle bigint;
BEGIN
    -- Midnight read with each offset in force within two days: the
    -- earliest reading that is midnight locally.
    FOR k IN -48..48 LOOP
        probe := t + make_interval(hours => k);
        cand := (m - ((probe AT TIME ZONE tz) - (probe AT TIME ZONE 'UTC'))) AT TIME ZONE 'UTC';
        IF (cand AT TIME ZONE tz) = m AND (best IS NULL OR cand < best) THEN
            best := cand;
        END IF;
    END LOOP;
    IF best IS NOT NULL THEN
        RETURN best;
    END IF;
    -- Midnight was skipped: the first whole second whose local time is at
    -- or after it, by bisection.
    before := extract(epoch FROM m AT TIME ZONE 'UTC')::bigint - 172800;
    after := before + 2 * 172800;
    IF NOT ((to_timestamp(before) AT TIME ZONE tz) < m AND (to_timestamp(after) AT TIME ZONE tz) >= m) THEN
        RETURN m AT TIME ZONE 'UTC';
    END IF;
    WHILE after - before > 1 LOOP
        middle := before + (after - before) / 2;
        IF (to_timestamp(middle) AT TIME ZONE tz) >= m THEN
            after := middle;
        ELSE
            before := middle;
        END IF;
    END LOOP;
    RETURN to_timestamp(after);
END
$$;

-- The instant a date means in zone tz (see outcome_local_midnight_exact).
-- Inlined into queries: NULL for NULL (cheaply: most stamps are not
-- dates); PostgreSQL's own reading of local midnight when the offset was
-- the same 26 hours earlier; else the exact function.
CREATE FUNCTION outcome_local_midnight(d date, tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN d IS NULL THEN NULL
        WHEN ((d::timestamp AT TIME ZONE tz) AT TIME ZONE tz) = d::timestamp
         AND (((d::timestamp AT TIME ZONE tz) - interval '26 hours') AT TIME ZONE tz)
             = d::timestamp - interval '26 hours'
        THEN d::timestamp AT TIME ZONE tz
        ELSE outcome_local_midnight_exact(d, tz)
    END
$$;
