"""Evaluation: the base model or a run's adapter over an eval set, verdicts, comparisons, failures back to badcases.

An evaluation reads its set and the output contracts from the store, freezes the set in the store,
closes it, and generates with the store closed; results go back in chunks, each a short transaction,
so the app and the CLI take turns with it, and a cancelled or killed evaluation resumes where it stopped.
The modules, in the order an evaluation meets them: `options`, `sets`, `run`, `judge`, `results`,
`compare`, `failures`, `prompt_trial`, `hard`; `remote` answers by an endpoint, `background` runs one in a
process of its own (the Evaluate page's action), `llm_judge` suggests verdicts where a person judges.
"""

from __future__ import annotations

from .background import (
    EvalJob,
    cancel_eval_job,
    eval_job,
    latest_eval_job,
    resume_in_background,
    start_evaluation,
)
from .compare import CHANGES, Comparison, GroupComparison, SideBySide, compare_evaluations, side_by_side
from .failures import FailuresSent, send_failures_to_badcases
from .hard import HardRecord, hard_records, why_hard
from .judge import judge
from .llm_judge import (
    JudgeAgreement,
    JudgeReport,
    judge_agreement,
    judge_evaluation,
    judge_suggestions,
    rubrics,
    set_rubric,
)
from .options import EVAL_SETS, EvalOptions, EvaluationCancelled, Progress
from .prompt_trial import PromptTrial, newest_finished_run, pick_examples, prompt_trial
from .results import (
    CategoryScore,
    EvaluationReport,
    default_pair,
    evaluation_report,
    evaluation_results,
    list_evaluations,
    set_verdict,
)
from .run import evaluate, evaluation_models, load_model_for, resume_evaluation, unfinished_evaluations
from .sets import EvalTarget, evaluation_datasets, evaluation_targets, record_key

__all__ = [
    "CHANGES",
    "EVAL_SETS",
    "CategoryScore",
    "Comparison",
    "EvalJob",
    "EvalOptions",
    "EvaluationCancelled",
    "EvaluationReport",
    "FailuresSent",
    "GroupComparison",
    "HardRecord",
    "JudgeAgreement",
    "JudgeReport",
    "Progress",
    "PromptTrial",
    "SideBySide",
    "cancel_eval_job",
    "compare_evaluations",
    "default_pair",
    "eval_job",
    "evaluate",
    "evaluation_datasets",
    "evaluation_targets",
    "EvalTarget",
    "evaluation_models",
    "evaluation_report",
    "evaluation_results",
    "hard_records",
    "judge",
    "judge_agreement",
    "judge_evaluation",
    "judge_suggestions",
    "latest_eval_job",
    "rubrics",
    "set_rubric",
    "list_evaluations",
    "load_model_for",
    "newest_finished_run",
    "pick_examples",
    "prompt_trial",
    "record_key",
    "resume_evaluation",
    "resume_in_background",
    "send_failures_to_badcases",
    "set_verdict",
    "side_by_side",
    "start_evaluation",
    "unfinished_evaluations",
    "why_hard",
]
