"""What ties one `archi run` together on the clusters: every container request the runner makes
carries the run's id and the step's name in its properties, so a client (the web UI's run page)
finds a run's steps on every cluster of the federation with one property filter per cluster. Kept
apart from the runner so that readers of runs need not load cwltool."""

from __future__ import annotations

import secrets

RUN = "archi_run"  # the run's id, on every step's container request (and a submitted runner's own)
STEP = "archi_step"  # the step's name in the workflow
WORKFLOW = "archi_workflow"  # the workflow file's name
RUN_ID_ENV = "ARCHI_RUN_ID"  # a submitted runner's run id, given to it by `archi run --submit`
REPORT_IN_OUTPUT_ENV = "ARCHI_RUN_REPORT_IN_OUTPUT"  # set for a submitted runner: its report is its output
REPORT = "report.json"  # a run's report (the plan, each step, what crossed), as `archi run --json` prints it
REPORT_TYPE = "archi-run-report"  # properties.type of the collection a run from a terminal keeps it in


def new_run_id(home_cluster: str) -> str:
    """A fresh run id, naming the cluster the run was started from (never a UUID: no object has it)."""
    return f"{home_cluster}-run-{secrets.token_hex(8)}"
