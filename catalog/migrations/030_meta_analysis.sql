-- bench-audit migration 030: the meta-analysis (issue 6). Derived tables, recomputed by every rescore
-- (audit/analysis.py); definitions of every column in docs/report.md.

-- Paired comparison of two models of a (benchmark, grader) unit on the samples both answered.
CREATE TABLE pairwise (
    benchmark      VARCHAR NOT NULL,
    grader         VARCHAR NOT NULL,
    model_a        VARCHAR NOT NULL,   -- model_a < model_b (alphabetical)
    model_b        VARCHAR NOT NULL,
    threshold      DOUBLE NOT NULL,
    n_shared       BIGINT NOT NULL,    -- samples both models answered
    score_a        DOUBLE NOT NULL,    -- on the shared samples
    score_b        DOUBLE NOT NULL,
    diff           DOUBLE NOT NULL,    -- score_a - score_b
    ci_low         DOUBLE,             -- paired bootstrap percentile interval of diff
    ci_high        DOUBLE,
    prob_a_better  DOUBLE,             -- share of bootstrap draws with diff > 0
    n_a_better     BIGINT NOT NULL,    -- samples where a's per-sample score beats b's
    n_b_better     BIGINT NOT NULL,
    sign_p         DOUBLE,             -- exact two-sided sign test on those samples
    PRIMARY KEY (benchmark, grader, model_a, model_b, threshold)
);

-- Rank of each model at each threshold, with its bootstrap distribution (joint resampling of the unit's samples).
CREATE TABLE rank_stability (
    benchmark      VARCHAR NOT NULL,
    grader         VARCHAR NOT NULL,
    model          VARCHAR NOT NULL,
    threshold      DOUBLE NOT NULL,
    rank           INTEGER NOT NULL,
    rank_binary    INTEGER NOT NULL,   -- rank at t = 0
    places_gained  INTEGER NOT NULL,   -- rank_binary - rank
    mean_rank      DOUBLE,
    rank_ci_low    DOUBLE,
    rank_ci_high   DOUBLE,
    p_rank1        DOUBLE,             -- P*(rank 1)
    p_shift        DOUBLE,             -- P*(the rank moves between t = 0 and t in the observed direction)
    n_boot         INTEGER,
    PRIMARY KEY (benchmark, grader, model, threshold)
);

-- Kendall tau-b between the binary (t = 0) and the threshold-t leaderboard of a unit.
CREATE TABLE leaderboard_agreement (
    benchmark      VARCHAR NOT NULL,
    grader         VARCHAR NOT NULL,
    threshold      DOUBLE NOT NULL,
    n_models       INTEGER NOT NULL,
    n_pairs        INTEGER NOT NULL,
    n_concordant   INTEGER NOT NULL,
    n_discordant   INTEGER NOT NULL,
    kendall_tau    DOUBLE,             -- null with fewer than two distinct scores
    tau_ci_low     DOUBLE,
    tau_ci_high    DOUBLE,
    PRIMARY KEY (benchmark, grader, threshold)
);

-- What binary grading pays a model for answering instead of abstaining.
CREATE TABLE guessing_premium (
    benchmark           VARCHAR NOT NULL,
    grader              VARCHAR NOT NULL,
    model               VARCHAR NOT NULL,
    threshold           DOUBLE NOT NULL,
    penalty             DOUBLE NOT NULL,
    n                   BIGINT NOT NULL,
    accuracy            DOUBLE NOT NULL,
    error_rate          DOUBLE NOT NULL,
    abstention_rate     DOUBLE NOT NULL,
    score_binary        DOUBLE NOT NULL,
    score_at_threshold  DOUBLE NOT NULL,
    premium             DOUBLE NOT NULL,   -- score_binary - score_at_threshold = penalty * error_rate
    relative_premium    DOUBLE NOT NULL,   -- premium minus the unit's mean premium at t
    places_gained       INTEGER NOT NULL,
    break_even_t        DOUBLE,            -- n_correct / (n_correct + n_wrong)
    premium_ci_low      DOUBLE,
    premium_ci_high     DOUBLE,
    PRIMARY KEY (benchmark, grader, model, threshold)
);

-- Rank stability pooled over every (benchmark, grader) unit with at least two models, per threshold.
CREATE VIEW rank_stability_pooled AS
SELECT a.threshold, count(*) AS n_units, sum(a.n_models) AS n_model_rows,
       avg(a.kendall_tau) AS mean_tau, min(a.kendall_tau) AS min_tau,
       (sum(a.n_concordant) - sum(a.n_discordant)) / nullif(sum(a.n_pairs), 0) AS pooled_tau_a,
       sum(a.n_discordant) AS n_discordant_pairs, sum(a.n_pairs) AS n_pairs,
       (SELECT count(*) FROM rank_stability r WHERE r.threshold = a.threshold AND r.places_gained <> 0) AS n_moves,
       (SELECT count(*) FROM rank_stability r WHERE r.threshold = a.threshold AND r.places_gained <> 0
                                                AND r.p_shift >= 0.95) AS n_moves_95
FROM leaderboard_agreement a WHERE a.n_models >= 2
GROUP BY a.threshold ORDER BY a.threshold;

-- Per model and threshold, over every unit it appears in: who gains or loses when abstention stops being punished.
CREATE VIEW model_movement AS
SELECT g.model, g.threshold, count(*) AS n_units, sum(g.places_gained) AS places_gained,
       avg(g.places_gained) AS mean_places_gained, avg(g.relative_premium) AS mean_relative_premium,
       avg(g.abstention_rate) AS mean_abstention_rate, avg(g.error_rate) AS mean_error_rate
FROM guessing_premium g GROUP BY g.model, g.threshold
ORDER BY g.threshold, mean_relative_premium, g.model;
