"""One generated stream, processed once by the four streaming jobs, shared by the integration
tests of the streaming and batch jobs (the stack is started once per session)."""

from __future__ import annotations

import uuid

import pytest

from configs.spark_config import settings_for_env
from tests.integration.helpers import GEN_ARGS, JOB_ENV, STREAMING, Run, run_jobs
from utils.launch import cds_archives


@pytest.fixture(scope="session")
def streamed(stack, tmp_path_factory):
    run = Run(tmp_path_factory.mktemp("streaming"), f"it{uuid.uuid4().hex[:6]}_")
    summary = run.generate(*GEN_ARGS)
    # Class-data sharing must never change a result nor stop a start: two jobs run with the
    # archives `make stack-up` recorded, one with none (a folder without them), one with damaged
    # ones (what a stale or half-copied archive looks like to the JVM). Every output is then
    # checked against the oracle.
    damaged = tmp_path_factory.mktemp("cds-damaged")
    for path in cds_archives(settings_for_env({**run.env, "SPARK_CDS_DIR": str(damaged)})).values():
        path.write_bytes(b"not an archive" * 1000)
    codes = run_jobs(run, STREAMING, "--available-now", extra_env=JOB_ENV, job_env={
        "clickstream_analysis": {"SPARK_CDS_DIR": str(tmp_path_factory.mktemp("cds-missing"))},
        "cdc_transformation": {"SPARK_CDS_DIR": str(damaged)}})
    assert codes == dict.fromkeys(STREAMING, 0), [
        (run.root / f"{j}.out").read_text()[-3000:] for j, c in codes.items() if c]
    return run, summary
