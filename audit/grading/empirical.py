"""Empirical evidence: what the published outputs show about how a (benchmark, grader) scored answers.

Read from the catalog with one GROUP BY: the set of original score values, and the mean original score of
detected abstentions next to that of wrong answers. Abstentions scored like correct answers mean the grader
credits abstention; scored like wrong answers, it does not. Answers nothing could be extracted from (no
extracted_answer) that score above wrong answers at about 1/C (C options) show a grader that guesses for the model.
"""

from __future__ import annotations

import duckdb

from audit.grading.taxonomy import Evidence

_SQL = """
SELECT benchmark, grader,
       count(DISTINCT original_score) AS n_values,
       list(DISTINCT original_score ORDER BY original_score) FILTER (WHERE original_score IS NOT NULL) AS vals,
       avg(original_score) FILTER (WHERE outcome = 'correct') AS mean_correct,
       avg(original_score) FILTER (WHERE outcome = 'wrong') AS mean_wrong,
       avg(original_score) FILTER (WHERE outcome = 'abstained') AS mean_abstained,
       count(*) FILTER (WHERE outcome = 'abstained') AS n_abstained,
       count(*) AS n,
       count(*) FILTER (WHERE extracted_answer IS NULL AND outcome <> 'abstained') AS n_unparsed,
       avg(original_score) FILTER (WHERE extracted_answer IS NULL AND outcome <> 'abstained') AS mean_unparsed,
       any_value(b.n_choices) AS n_choices
FROM responses LEFT JOIN benchmarks b USING (benchmark)
GROUP BY benchmark, grader ORDER BY benchmark, grader
"""


def empirical_evidence(con: duckdb.DuckDBPyConnection) -> list[Evidence]:
    out = []
    for bench, grader, n_values, vals, mc, mw, ma, n_abs, n, n_unp, mu, n_choices in con.sql(_SQL).fetchall():
        vals = vals or []
        shown = ", ".join(f"{v:g}" for v in vals[:12]) + (" ..." if len(vals) > 12 else "")
        detail = f"{n} outputs; original scores take {len(vals)} value(s): {{{shown}}}"
        binary = set(vals) <= {0.0, 1.0} and len(vals) > 0
        idk = None
        a = None
        if n_abs:
            detail += f"; {n_abs} detected abstentions scored {ma:.3g} on average" if ma is not None else \
                f"; {n_abs} detected abstentions carry no source score"
            if ma is not None and mw is not None and mc is not None:
                a = ma
                if abs(ma - mw) < 1e-9:
                    idk = "none"
                elif abs(ma - mc) < 1e-9:
                    idk = "full"
                elif mw < ma < mc:
                    idk = "partial"
            if mw is not None:
                detail += f" vs wrong answers {mw:.3g}"
        if n_unp:
            # answers nothing could be extracted from: a grader that guesses for the model scores them near 1/C
            detail += f"; {n_unp} unparsed answers " + (f"scored {mu:.3g} on average" if mu is not None else
                                                         "carry no source score")
            if idk is None and mu is not None and mw is not None and abs(mu - mw) < 1e-9:
                idk = "none"
                detail += " (like wrong answers)"
            elif idk is None and mu is not None and mw is not None and mc is not None and n_choices:
                p = 1 / n_choices
                if mu > mw and n_unp >= 20 and abs(mu - p) <= 3 * (p * (1 - p) / n_unp) ** 0.5:
                    idk = "chance"
                    detail += f" (chance level 1/{n_choices} = {1 / n_choices:.3g}: the grader guesses for the model)"
        out.append(Evidence(
            kind="empirical", benchmark=bench, grader=grader, idk_credit=idk,
            binary_grading=binary if vals else None,
            score_correct=mc if a is not None else None, score_abstain=a,
            score_wrong=mw if a is not None else None, detail=detail,
        ))
    return out
