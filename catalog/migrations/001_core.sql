-- bench-audit catalog, schema version 1: the core tables and views.
-- Migrations are applied in file-name order, each once, recorded in schema_migrations.

CREATE TABLE runs (
    run_id       VARCHAR PRIMARY KEY,
    command      VARCHAR NOT NULL,
    params       JSON,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    status       VARCHAR NOT NULL  -- running | completed | failed
);

CREATE TABLE sources (
    source_id      VARCHAR PRIMARY KEY,
    format         VARCHAR NOT NULL,
    uri            VARCHAR NOT NULL,
    revision       VARCHAR,
    sha256         VARCHAR NOT NULL,
    license        VARCHAR,
    n_read         BIGINT NOT NULL,
    n_accepted     BIGINT NOT NULL,
    n_quarantined  BIGINT NOT NULL,
    ingest_run_id  VARCHAR,
    ingested_at    TIMESTAMP NOT NULL,
    CHECK (n_read = n_accepted + n_quarantined)
);

-- Sources that could not be read at all (unreachable URI, unrecognised file): shown in the report.
CREATE TABLE source_failures (
    target         VARCHAR NOT NULL,   -- the path or URI as given
    reason         VARCHAR NOT NULL,
    run_id         VARCHAR,
    failed_at      TIMESTAMP NOT NULL
);

CREATE TABLE benchmarks (
    benchmark   VARCHAR PRIMARY KEY,
    name        VARCHAR,
    n_choices   INTEGER
);

CREATE TABLE models (
    model       VARCHAR PRIMARY KEY
);

CREATE TABLE responses (
    source_id          VARCHAR NOT NULL,
    benchmark          VARCHAR NOT NULL,
    grader             VARCHAR NOT NULL,
    model              VARCHAR NOT NULL,
    sample_id          VARCHAR NOT NULL,
    prompt             VARCHAR,
    response           VARCHAR,
    extracted_answer   VARCHAR,
    gold               VARCHAR,
    original_score     DOUBLE,
    source_label       VARCHAR,
    outcome            VARCHAR NOT NULL CHECK (outcome IN ('correct', 'wrong', 'abstained')),
    abstention_reason  VARCHAR,
    confidence         DOUBLE CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
    ingest_run_id      VARCHAR
);

CREATE TABLE quarantine (
    source_id      VARCHAR NOT NULL,
    locator        VARCHAR NOT NULL,
    raw            VARCHAR,
    reason         VARCHAR NOT NULL,
    ingest_run_id  VARCHAR
);

-- One row per (benchmark, grader): the classification and the evidence behind it.
CREATE TABLE grading_schemes (
    benchmark         VARCHAR NOT NULL,
    grader            VARCHAR NOT NULL,
    scheme            VARCHAR NOT NULL,
    idk_credit        VARCHAR NOT NULL,
    wrong_penalty     VARCHAR NOT NULL,
    grader_kind       VARCHAR,
    binary_grading    BOOLEAN,
    implied_t         DOUBLE,    -- t* = (a - w) / (c - w) where scores are known
    rewards_guessing  BOOLEAN,   -- a <= w: abstaining never beats a guess
    evidence_kinds    VARCHAR[], -- curated | static | empirical | probe
    conflicts         JSON,      -- evidence that disagrees with the decision, never dropped
    classified_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (benchmark, grader)
);

CREATE TABLE grading_evidence (
    benchmark      VARCHAR NOT NULL,
    grader         VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,  -- curated | static | empirical | probe
    scheme         VARCHAR,
    idk_credit     VARCHAR,
    wrong_penalty  VARCHAR,
    grader_kind    VARCHAR,
    score_correct  DOUBLE,
    score_abstain  DOUBLE,
    score_wrong    DOUBLE,
    detail         VARCHAR,
    citation       VARCHAR
);

CREATE TABLE scores (
    benchmark        VARCHAR NOT NULL,
    grader           VARCHAR NOT NULL,
    model            VARCHAR NOT NULL,
    threshold        DOUBLE NOT NULL,
    penalty          DOUBLE NOT NULL,   -- t / (1 - t)
    n                BIGINT NOT NULL,
    n_correct        BIGINT NOT NULL,
    n_wrong          BIGINT NOT NULL,
    n_abstained      BIGINT NOT NULL,
    accuracy         DOUBLE NOT NULL,
    error_rate       DOUBLE NOT NULL,
    abstention_rate  DOUBLE NOT NULL,
    score            DOUBLE NOT NULL,
    ci_low           DOUBLE,
    ci_high          DOUBLE,
    rank             INTEGER NOT NULL,
    PRIMARY KEY (benchmark, grader, model, threshold)
);

-- Leaderboard at each threshold, best first.
CREATE VIEW leaderboard AS
SELECT s.benchmark, b.name AS benchmark_name, s.grader, s.threshold, s.rank, s.model, s.score, s.ci_low, s.ci_high,
       s.accuracy, s.error_rate, s.abstention_rate, s.n
FROM scores s LEFT JOIN benchmarks b USING (benchmark)
ORDER BY s.benchmark, s.grader, s.threshold, s.rank, s.model;

-- How each model's rank moves from binary grading (t = 0) to each penalised threshold.
CREATE VIEW rank_shift AS
SELECT s.benchmark, s.grader, s.model, s.threshold,
       b0.rank AS rank_binary, s.rank AS rank_at_threshold, b0.rank - s.rank AS places_gained,
       b0.score AS score_binary, s.score AS score_at_threshold
FROM scores s
JOIN scores b0 ON b0.benchmark = s.benchmark AND b0.grader = s.grader AND b0.model = s.model AND b0.threshold = 0
WHERE s.threshold > 0;

-- How many (benchmark, grader) units fall under each grading scheme.
CREATE VIEW grading_census AS
SELECT scheme, idk_credit, count(*) AS n_units, count(DISTINCT benchmark) AS n_benchmarks,
       count(*) FILTER (WHERE rewards_guessing) AS n_rewarding_guessing
FROM grading_schemes GROUP BY scheme, idk_credit ORDER BY n_units DESC, scheme;

-- Per source: records read = accepted + quarantined, checked against what the tables hold.
CREATE VIEW source_reconciliation AS
SELECT s.source_id, s.format, s.n_read, s.n_accepted, s.n_quarantined,
       (SELECT count(*) FROM responses r WHERE r.source_id = s.source_id) AS rows_in_responses,
       (SELECT count(*) FROM quarantine q WHERE q.source_id = s.source_id) AS rows_in_quarantine
FROM sources s ORDER BY s.source_id;
