-- Calibration and the behavioural-calibration audit (audit/calibration.py), recomputed by every run.

-- One row per (model, benchmark, grader) whose answered rows carry a confidence.
CREATE TABLE calibration (
    model            VARCHAR NOT NULL,
    benchmark        VARCHAR NOT NULL,
    grader           VARCHAR NOT NULL,
    n                BIGINT NOT NULL,   -- answered rows (correct or wrong) with a confidence
    accuracy         DOUBLE,
    mean_confidence  DOUBLE,
    overconfidence   DOUBLE,            -- mean_confidence - accuracy
    ece              DOUBLE,            -- expected calibration error over equal-mass bins
    n_bins           INTEGER,
    brier            DOUBLE,
    aurc             DOUBLE,            -- area under the risk-coverage curve (lower is better)
    PRIMARY KEY (model, benchmark, grader)
);

-- The simulated policy "abstain when confidence < t", scored with the matching penalty t / (1 - t).
CREATE TABLE threshold_sweep (
    model            VARCHAR NOT NULL,
    benchmark        VARCHAR NOT NULL,
    grader           VARCHAR NOT NULL,
    threshold        DOUBLE NOT NULL,
    n                BIGINT NOT NULL,
    n_answered       BIGINT NOT NULL,
    n_correct        BIGINT NOT NULL,
    n_wrong          BIGINT NOT NULL,
    coverage         DOUBLE NOT NULL,   -- n_answered / n
    accuracy         DOUBLE NOT NULL,   -- n_correct / n
    error            DOUBLE NOT NULL,   -- n_wrong / n
    abstention_rate  DOUBLE NOT NULL,
    risk             DOUBLE,            -- n_wrong / n_answered (selective risk); null when nothing is answered
    score            DOUBLE NOT NULL,   -- (n_correct - n_wrong * t / (1 - t)) / n
    PRIMARY KEY (model, benchmark, grader, threshold)
);
