-- Settle the generated billing run in DuckDB SQL.
--
-- Run by duckdb_run.py, which replaces @METRICS@ with a read_csv(...) call
-- that gives every column of the metrics file an explicit type (money and
-- values DECIMAL(18,4), never DOUBLE) and @AS_OF@ with the as-of instant.
-- The table `terms` (one row per contract: its numbers, from terms.csv) is
-- already in the database file.
--
-- The contract shape is the one generate.py writes: a fixed platform fee,
-- graduated tiers on the sum of `tickets_resolved`, a gain share on the sum
-- of `revenue` against a fixed baseline (relative threshold, first-dollar
-- sharing, a cap), and SLA credit bands on the minimum of `uptime_pct`
-- (percent of the platform and usage lines). Every line is rounded half-even
-- to 2 places (round_even on DECIMAL), once.

WITH
-- What was known at the as-of time (recorded_at defaults to the timestamp).
known AS (
    SELECT customer, series, "timestamp" AS ts, "value", id,
           coalesce(recorded_at, "timestamp") AS rec,
           coalesce(void, false) AS void
    FROM @METRICS@
    WHERE coalesce(recorded_at, "timestamp") <= @AS_OF@
),
-- One winning version per (customer, series, id): the latest recorded_at.
-- Rows without an id all count.
winners AS (
    SELECT customer, series, ts, "value", void FROM known WHERE id IS NULL
    UNION ALL
    SELECT customer, series, w.ts, w."value", w.void
    FROM (
        SELECT customer, series,
               arg_max({'ts': ts, 'value': "value", 'void': void}, rec) AS w
        FROM known
        WHERE id IS NOT NULL
        GROUP BY customer, series, id
    )
),
-- The metrics per customer and calendar month (UTC) of the winning
-- timestamp; a void winner removes the observation. An empty customer
-- (NULL) is read by every contract.
agg AS (
    SELECT customer,
           date_trunc('month', ts) AS month,
           sum("value") FILTER (WHERE series = 'tickets_resolved') AS resolved,
           sum("value") FILTER (WHERE series = 'revenue') AS revenue,
           min("value") FILTER (WHERE series = 'uptime_pct') AS uptime
    FROM winners
    WHERE NOT void AND series IN ('tickets_resolved', 'revenue', 'uptime_pct')
    GROUP BY ALL
),
last_obs AS (
    SELECT customer, max(month) AS last_month FROM agg GROUP BY customer
),
-- The periods settled: every month of the term that has ended by the as-of
-- time, and any later one up to the last that holds an observation.
periods AS (
    SELECT * FROM (
        SELECT t.*,
               unnest(generate_series(t.term_start::TIMESTAMPTZ,
                                      t.term_end::TIMESTAMPTZ - INTERVAL 1 MONTH,
                                      INTERVAL 1 MONTH)) AS month
        FROM terms t
    ) p
    WHERE p.month + INTERVAL 1 MONTH <= @AS_OF@
       OR p.month <= greatest((SELECT last_month FROM last_obs o WHERE o.customer = p.customer),
                              (SELECT last_month FROM last_obs o WHERE o.customer IS NULL))
),
-- Each period with its metric values (own rows plus shared rows; a sum
-- with no observation is 0, a min with none is NULL: an error, see below).
inputs AS (
    SELECT p.*,
           coalesce(o.resolved, 0) + coalesce(s.resolved, 0) AS q,
           coalesce(o.revenue, 0) + coalesce(s.revenue, 0) AS revenue,
           least(o.uptime, s.uptime) AS uptime
    FROM periods p
    LEFT JOIN agg o ON o.customer = p.customer AND o.month = p.month
    LEFT JOIN agg s ON s.customer IS NULL AND s.month = p.month
),
charges AS (
    SELECT *,
           round_even(fee, 2) AS platform,
           -- graduated: each unit at the price of the tier it falls in
           round_even(price1 * least(q, allowance)
                      + price2 * greatest(least(q, tier2_to) - allowance, 0)
                      + price3 * greatest(q - tier2_to, 0), 2) AS usage,
           -- gain share, first dollar, once the gain reaches the threshold; at most the cap
           round_even(CASE WHEN revenue - baseline > 0
                            AND revenue - baseline >= threshold_rel * baseline
                           THEN least(share * (revenue - baseline), cap)
                           ELSE 0 END, 2) AS gain
    FROM inputs
),
lines AS (
    SELECT contract, month, uptime, platform, usage, gain,
           -- the band with from <= uptime < to: percent/100 of platform + usage
           round_even(CASE WHEN uptime >= minor_from AND uptime < minor_to THEN credit_minor
                           WHEN uptime < major_to THEN credit_major
                           ELSE 0 END
                      * 0.01::DECIMAL(3, 2) * (platform + usage), 2) AS credit
    FROM charges
)
SELECT @SELECT@
FROM lines
@GROUP@
