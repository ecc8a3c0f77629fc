-- The ledger of issued statements, version 1 (SQLite).
--
-- Issued statements and reconciliations are only ever inserted: the
-- triggers below refuse every UPDATE and DELETE, so an issued statement
-- cannot change afterwards, whoever writes to the file.

CREATE TABLE outcome_statements (
    id           INTEGER PRIMARY KEY,      -- the statement's number, from 1
    contract     TEXT NOT NULL,            -- the contract id
    period_start TEXT NOT NULL,            -- YYYY-MM-DD, local to the contract
    period_end   TEXT NOT NULL,            -- exclusive
    version      TEXT NOT NULL,            -- the contract version that settled it
    currency     TEXT NOT NULL,
    total        TEXT NOT NULL,            -- exact decimal text, at the contract's scale
    statement    TEXT NOT NULL,            -- the statement as settle --format json prints it
    state_after  TEXT NOT NULL,            -- JSON: the state carried into the next period
    as_of        TEXT,                     -- RFC 3339: what was known; NULL: everything
    issued_at    TEXT NOT NULL,            -- RFC 3339, UTC
    UNIQUE (contract, period_start)        -- a period is issued once, whoever races
);

CREATE TABLE outcome_statement_lines (
    statement_id INTEGER NOT NULL REFERENCES outcome_statements (id),
    position     INTEGER NOT NULL,         -- the line's place in its statement, from 0
    charge       TEXT NOT NULL,            -- a charge's id, or a limit's
    kind         TEXT NOT NULL,
    quantity     TEXT,                     -- unit, tiered and package lines
    amount       TEXT NOT NULL,
    PRIMARY KEY (statement_id, position)
);

CREATE TABLE outcome_reconciliations (
    id            INTEGER PRIMARY KEY,
    contract      TEXT NOT NULL,
    sequence      INTEGER NOT NULL,        -- 1, 2, ... per contract
    version       TEXT NOT NULL,           -- the contract version that settled again
    through_start TEXT NOT NULL,           -- the last period settled again
    state_after   TEXT NOT NULL,           -- JSON: the state after that period
    as_of         TEXT,
    reconciled_at TEXT NOT NULL,
    UNIQUE (contract, sequence)            -- two reconciliations never both append
);

CREATE TABLE outcome_adjustments (
    id                INTEGER PRIMARY KEY,
    reconciliation_id INTEGER NOT NULL REFERENCES outcome_reconciliations (id),
    contract          TEXT NOT NULL,
    period_start      TEXT NOT NULL,
    period_end        TEXT NOT NULL,
    position          INTEGER NOT NULL,    -- its place in the reconciliation, from 0
    charge            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    issued            TEXT NOT NULL,       -- issued plus earlier adjustments
    settled           TEXT NOT NULL,
    amount            TEXT NOT NULL        -- settled - issued
);

CREATE INDEX outcome_adjustments_contract ON outcome_adjustments (contract, period_start);

CREATE TRIGGER outcome_statements_no_update BEFORE UPDATE ON outcome_statements
BEGIN SELECT RAISE(ABORT, 'issued statements are append-only'); END;
CREATE TRIGGER outcome_statements_no_delete BEFORE DELETE ON outcome_statements
BEGIN SELECT RAISE(ABORT, 'issued statements are append-only'); END;
CREATE TRIGGER outcome_statement_lines_no_update BEFORE UPDATE ON outcome_statement_lines
BEGIN SELECT RAISE(ABORT, 'issued statements are append-only'); END;
CREATE TRIGGER outcome_statement_lines_no_delete BEFORE DELETE ON outcome_statement_lines
BEGIN SELECT RAISE(ABORT, 'issued statements are append-only'); END;
CREATE TRIGGER outcome_reconciliations_no_update BEFORE UPDATE ON outcome_reconciliations
BEGIN SELECT RAISE(ABORT, 'reconciliations are append-only'); END;
CREATE TRIGGER outcome_reconciliations_no_delete BEFORE DELETE ON outcome_reconciliations
BEGIN SELECT RAISE(ABORT, 'reconciliations are append-only'); END;
CREATE TRIGGER outcome_adjustments_no_update BEFORE UPDATE ON outcome_adjustments
BEGIN SELECT RAISE(ABORT, 'adjustments are append-only'); END;
CREATE TRIGGER outcome_adjustments_no_delete BEFORE DELETE ON outcome_adjustments
BEGIN SELECT RAISE(ABORT, 'adjustments are append-only'); END;
