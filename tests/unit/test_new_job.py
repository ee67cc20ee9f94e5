"""`python -m tools.new_job` makes a job that follows the house style and whose generated test
passes; --remove takes exactly that away again (README, "Adding a job")."""

from __future__ import annotations

import shutil
import subprocess
import sys

from configs.spark_config import PROJECT_ROOT, load_job_registry


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


def test_a_new_streaming_and_batch_job_pass_their_generated_tests_and_are_removed(tmp_path):
    registry = tmp_path / "jobs.yaml"
    shutil.copy(PROJECT_ROOT / "configs" / "jobs.yaml", registry)
    original = registry.read_text()
    made = {"probe_stream": ("streaming", PROJECT_ROOT / "jobs" / "streaming" / "probe_stream.py"),
            "probe_hourly": ("batch", PROJECT_ROOT / "jobs" / "batch" / "probe_hourly.py")}
    try:
        for name, (kind, _script) in made.items():
            created = run("-m", "tools.new_job", name, "--kind", kind, "--registry", str(registry))
            assert created.returncode == 0, created.stderr
        jobs = load_job_registry(registry)
        assert jobs["probe_stream"].topics == ("app_events",) and not jobs["probe_stream"].enabled
        assert jobs["probe_hourly"].interval == "hour" and jobs["probe_hourly"].upstream
        for _kind, script in made.values():
            assert run(str(script), "--help").returncode == 0
        lint = run("-m", "ruff", "check", *(str(s) for _k, s in made.values()),
                   *(f"tests/unit/test_{n}.py" for n in made))
        assert lint.returncode == 0, lint.stdout
        tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", *(f"tests/unit/test_{n}.py" for n in made))
        assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout[-3000:]
        again = run("-m", "tools.new_job", "probe_stream", "--kind", "streaming", "--registry", str(registry))
        assert again.returncode == 2 and "exists already" in again.stderr
    finally:
        for name in made:
            run("-m", "tools.new_job", name, "--remove", "--registry", str(registry))
    assert registry.read_text() == original
    assert not any(s.exists() for _k, s in made.values())
    assert not any((PROJECT_ROOT / "tests" / "unit" / f"test_{n}.py").exists() for n in made)


def test_a_bad_name_is_refused_naming_the_argument():
    bad = run("-m", "tools.new_job", "Page-Funnel", "--kind", "batch")
    assert bad.returncode == 2 and "NAME must be lower case" in bad.stderr
