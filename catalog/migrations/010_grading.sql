-- Grading classifier (docs/grading.md): the harness catalogs read from their wheels, the probes of real graders,
-- and a grading census over both the audited units and the whole catalogs.

-- One row per leaf task of a harness catalog (lm_eval: task YAMLs; helm: run groups without subgroups), with the
-- config facts it was classified from and the rule (catalog/registry/grading_metrics.yaml) that decided.
CREATE TABLE harness_tasks (
    catalog                VARCHAR NOT NULL,   -- lm_eval | helm
    catalog_version        VARCHAR NOT NULL,   -- the wheel's release
    task                   VARCHAR NOT NULL,
    kind                   VARCHAR NOT NULL,   -- task | python_task | run_group
    benchmark              VARCHAR,            -- canonical benchmark id (catalog/registry/benchmarks.yaml)
    config_path            VARCHAR NOT NULL,   -- archive member that defines it
    output_type            VARCHAR,
    output_type_defaulted  BOOLEAN,            -- true: the YAML leaves it to the harness default
    metrics                VARCHAR[],
    primary_metric         VARCHAR,
    metrics_defaulted      BOOLEAN,
    filters                VARCHAR[],          -- "name: function>function" per filter pipeline
    process_results        VARCHAR,            -- the !function it names, recorded, never run
    includes               VARCHAR[],          -- files merged through include:, in order
    scheme                 VARCHAR NOT NULL,
    idk_credit             VARCHAR NOT NULL,
    wrong_penalty          VARCHAR NOT NULL,
    grader_kind            VARCHAR,
    rewards_guessing       BOOLEAN,
    rule                   VARCHAR NOT NULL,
    rule_reason            VARCHAR,
    PRIMARY KEY (catalog, task)
);

-- Configs that could not be read (kept, never dropped).
CREATE TABLE harness_parse_errors (
    catalog          VARCHAR NOT NULL,
    catalog_version  VARCHAR NOT NULL,
    config_path      VARCHAR NOT NULL,
    error            VARCHAR NOT NULL
);

-- The real grader run on synthetic answers: one row per (unit, filter, case).
CREATE TABLE grading_probes (
    benchmark    VARCHAR NOT NULL,
    grader       VARCHAR NOT NULL,
    task         VARCHAR NOT NULL,
    filter       VARCHAR,            -- the filter pipeline, for metric + filter graders
    instruction  VARCHAR,            -- IFEval: the instruction id probed
    probe_case   VARCHAR NOT NULL,   -- correct | idk | no_comment | refusal | wrong
    response     VARCHAR NOT NULL,
    extracted    VARCHAR,            -- what the filters made of the response
    gold         VARCHAR,
    score        DOUBLE,
    void         BOOLEAN NOT NULL,   -- the positive control failed (or the grader could not run): no evidence
    note         VARCHAR
);

-- The census: counts per scheme for each population. `population` is 'audited units' (grading_schemes: the
-- reference rows and every (benchmark, grader) seen in the ingested outputs), or '<catalog> <version>' for a
-- harness catalog. share = n_units / units in that population.
CREATE OR REPLACE VIEW grading_census AS
WITH per AS (
    SELECT 'audited units' AS population, scheme, idk_credit, benchmark, rewards_guessing FROM grading_schemes
    UNION ALL
    SELECT catalog || ' ' || catalog_version, scheme, idk_credit, benchmark, rewards_guessing FROM harness_tasks
)
SELECT population, scheme, idk_credit, count(*) AS n_units, count(DISTINCT benchmark) AS n_benchmarks,
       count(*) FILTER (WHERE rewards_guessing) AS n_rewarding_guessing,
       round(count(*) / sum(count(*)) OVER (PARTITION BY population), 4) AS share
FROM per GROUP BY population, scheme, idk_credit
ORDER BY population = 'audited units' DESC, population, n_units DESC, scheme, idk_credit;

-- Every disagreement between evidence, one row each (grading_schemes.conflicts flattened): shown, never resolved
-- silently. `decided` is what the strongest evidence said; `says` what this piece of evidence says instead.
CREATE VIEW grading_conflicts AS
SELECT benchmark, grader, c.field, c.decided, c.evidence_kind, c.says, c.detail, c.citation
FROM (SELECT benchmark, grader,
             unnest(from_json(conflicts, '[{"field": "VARCHAR", "decided": "VARCHAR", "evidence_kind": "VARCHAR",
                                            "says": "VARCHAR", "detail": "VARCHAR", "citation": "VARCHAR"}]')) AS c
      FROM grading_schemes WHERE conflicts IS NOT NULL)
ORDER BY 1, 2, 3, 5;
