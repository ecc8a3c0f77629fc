//! The versioned schema of metric stores (component `metrics`), shared by
//! the SQLite and PostgreSQL stores: each database has its own list of
//! migrations, under `migrations/<database>/metrics/`, applied in order by
//! [`crate::store`]'s runner.

use crate::store::{Migration, Schema};

/// The `metrics` component: the tables `outcome_observations` and
/// `outcome_dimensions` (see `migrations/*/metrics/` and the stores' module
/// docs).
pub(crate) const METRICS: Schema = Schema {
    component: "metrics",
    what: "metric store",
    create_with: "outcome import",
    sqlite: &[Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/metrics/0001_observations.sql"),
    }],
    postgres: &[Migration {
        version: 1,
        sql: include_str!("../../migrations/postgres/metrics/0001_observations.sql"),
    }],
};
