-- The ledger of issued statements, version 1 (PostgreSQL).
--
-- Issued statements and reconciliations are only ever inserted: the
-- triggers below refuse every UPDATE and DELETE (TRUNCATE too), so an
-- issued statement cannot change afterwards, whoever writes to the tables.

CREATE TABLE outcome_statements (
    id           BIGSERIAL PRIMARY KEY,
    contract     TEXT NOT NULL,
    period_start DATE NOT NULL,            -- local to the contract
    period_end   DATE NOT NULL,            -- exclusive
    version      TEXT NOT NULL,            -- the contract version that settled it
    currency     TEXT NOT NULL,
    total        NUMERIC NOT NULL,         -- at the contract's scale
    statement    JSONB NOT NULL,           -- the statement as settle --format json prints it
    state_after  JSONB NOT NULL,           -- the state carried into the next period
    as_of        TIMESTAMPTZ,              -- what was known; NULL: everything
    issued_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (contract, period_start)        -- a period is issued once, whoever races
);

CREATE TABLE outcome_statement_lines (
    statement_id BIGINT NOT NULL REFERENCES outcome_statements (id),
    position     INTEGER NOT NULL,         -- the line's place in its statement, from 0
    charge       TEXT NOT NULL,            -- a charge's id, or a limit's
    kind         TEXT NOT NULL,
    quantity     NUMERIC,                  -- unit, tiered and package lines
    amount       NUMERIC NOT NULL,
    PRIMARY KEY (statement_id, position)
);

CREATE TABLE outcome_reconciliations (
    id            BIGSERIAL PRIMARY KEY,
    contract      TEXT NOT NULL,
    sequence      INTEGER NOT NULL,        -- 1, 2, ... per contract
    version       TEXT NOT NULL,
    through_start DATE NOT NULL,           -- the last period settled again
    state_after   JSONB NOT NULL,          -- the state after that period
    as_of         TIMESTAMPTZ,
    reconciled_at TIMESTAMPTZ NOT NULL,
    UNIQUE (contract, sequence)            -- two reconciliations never both append
);

CREATE TABLE outcome_adjustments (
    id                BIGSERIAL PRIMARY KEY,
    reconciliation_id BIGINT NOT NULL REFERENCES outcome_reconciliations (id),
    contract          TEXT NOT NULL,
    period_start      DATE NOT NULL,
    period_end        DATE NOT NULL,
    position          INTEGER NOT NULL,    -- its place in the reconciliation, from 0
    charge            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    issued            NUMERIC NOT NULL,    -- issued plus earlier adjustments
    settled           NUMERIC NOT NULL,
    amount            NUMERIC NOT NULL     -- settled - issued
);

CREATE INDEX outcome_adjustments_contract ON outcome_adjustments (contract, period_start);

CREATE FUNCTION outcome_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER outcome_statements_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON outcome_statements FOR EACH STATEMENT EXECUTE FUNCTION outcome_append_only();
CREATE TRIGGER outcome_statement_lines_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON outcome_statement_lines FOR EACH STATEMENT EXECUTE FUNCTION outcome_append_only();
CREATE TRIGGER outcome_reconciliations_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON outcome_reconciliations FOR EACH STATEMENT EXECUTE FUNCTION outcome_append_only();
CREATE TRIGGER outcome_adjustments_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON outcome_adjustments FOR EACH STATEMENT EXECUTE FUNCTION outcome_append_only();
