-- Great Expectations results (audit/validation.py): one row per (suite, source, expectation) per validation.
-- Rows that failed an expectation are in `quarantine` with the expectation's name as the reason.
CREATE TABLE validation_results (
    suite             VARCHAR NOT NULL,   -- canonical_responses (at ingest) | canonical_scores (after rescore)
    source_id         VARCHAR,            -- null for suites over derived tables
    expectation       VARCHAR NOT NULL,   -- the GE expectation type, e.g. expect_column_values_to_be_between
    column_name       VARCHAR,
    engine            VARCHAR NOT NULL,   -- great_expectations | arrow (checks pandas cannot express: NaN vs null)
    success           BOOLEAN NOT NULL,
    element_count     BIGINT NOT NULL,
    unexpected_count  BIGINT NOT NULL,
    detail            VARCHAR,            -- JSON: a few unexpected values, or the exception GE reported
    ingest_run_id     VARCHAR,
    validated_at      TIMESTAMP NOT NULL
);

-- One line per suite and expectation: how many sources / rows it checked, and how many rows failed.
CREATE VIEW validation_summary AS
SELECT suite, expectation, column_name, engine,
       count(*) AS n_checks, count(*) FILTER (WHERE NOT success) AS n_failed_checks,
       sum(element_count) AS rows_checked, sum(unexpected_count) AS rows_unexpected
FROM validation_results
GROUP BY suite, expectation, column_name, engine
ORDER BY suite, rows_unexpected DESC, expectation, column_name;

-- The suite over the derived `scores` table, re-run by every rescore (audit/analysis.py replaces it whole).
CREATE TABLE scores_validation AS SELECT * FROM validation_results WITH NO DATA;

CREATE OR REPLACE VIEW validation_summary AS
SELECT suite, expectation, column_name, engine,
       count(*) AS n_checks, count(*) FILTER (WHERE NOT success) AS n_failed_checks,
       sum(element_count) AS rows_checked, sum(unexpected_count) AS rows_unexpected
FROM (SELECT * FROM validation_results UNION ALL SELECT * FROM scores_validation)
GROUP BY suite, expectation, column_name, engine
ORDER BY suite, rows_unexpected DESC, expectation, column_name;
