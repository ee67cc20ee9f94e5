"""One generated stream, processed once by the four streaming jobs, shared by the integration
tests of the streaming and batch jobs (the stack is started once per session)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.helpers import GEN_ARGS, JOB_ENV, STREAMING, Run, run_jobs


@pytest.fixture(scope="session")
def streamed(stack, tmp_path_factory):
    run = Run(tmp_path_factory.mktemp("streaming"), f"it{uuid.uuid4().hex[:6]}_")
    summary = run.generate(*GEN_ARGS)
    codes = run_jobs(run, STREAMING, "--available-now", extra_env=JOB_ENV)
    assert codes == dict.fromkeys(STREAMING, 0), [
        (run.root / f"{j}.out").read_text()[-3000:] for j, c in codes.items() if c]
    return run, summary
