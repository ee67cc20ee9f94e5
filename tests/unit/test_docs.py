"""The commands in README.md and QUICK_START.md stay true: make targets exist, every Python
entry point they name exists and answers --help, compose profiles and services exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import yaml

from configs.spark_config import PROJECT_ROOT

DOCS = ("README.md", "QUICK_START.md")


def commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = (PROJECT_ROOT / doc).read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            for raw in block.splitlines():
                line = raw.split("#", 1)[0].strip()
                if line:
                    found.append((doc, line))
    return found


MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (PROJECT_ROOT / "Makefile").read_text(), flags=re.M))


def entry_point(words: list[str]) -> list[str] | None:
    """The Python entry point of a documented command, as an argv to run with --help."""
    while words and "=" in words[0]:
        words = words[1:]
    if not words or not words[0].endswith("python"):
        return None
    if words[1] == "-m":
        return [sys.executable, "-m", words[2]]
    return [sys.executable, words[1]]


@pytest.mark.parametrize(("doc", "line"), commands())
def test_documented_command_is_real(doc, line):
    words = shlex.split(line)
    env_stripped = [w for w in words if "=" not in w or w.startswith("-")]
    if env_stripped[0] == "make":
        assert set(env_stripped[1:]) <= MAKE_TARGETS, f"{doc}: {line}"
    elif env_stripped[0] == "docker":
        compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
        profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
        for i, w in enumerate(env_stripped):
            if w == "--profile":
                assert env_stripped[i + 1] in profiles
        args = env_stripped[env_stripped.index("compose") + 1:]
        for i, w in enumerate(args):
            if w in ("logs", "-f") or (i and args[i - 1] in ("-p", "--profile")):
                continue
            if not w.startswith("-") and w not in ("up", "down"):
                assert w in compose["services"], f"{doc}: unknown service {w}"
    elif entry_point(words):
        argv = entry_point(words)
        result = subprocess.run([*argv, "--help"], check=False, cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, f"{doc}: {line}\n{result.stderr}"
    else:
        assert env_stripped[0] in ("curl", "jq", "KEEP_STACK=1", "source"), f"{doc}: unrecognised command {line}"


# Read-only commands, run exactly as printed; the others are run with --help (they start jobs,
# write data or run for ever).
AS_PRINTED = {"python orchestrator.py status", "python orchestrator.py status --intervals hourly_aggregate",
              "python -m tools.report"}


@pytest.mark.parametrize(("doc", "line"), [(d, c) for d, c in commands() if c.split()[0] == "python"])
def test_documented_python_commands_work_in_a_clean_shell_after_the_documented_activation(doc, line, tmp_path):
    """A fresh login shell with only the system PATH (Debian has no `python`): after
    `source .venv/bin/activate`, as the docs say, `python ...` is the project's Python."""
    command = line if line in AS_PRINTED else f"{line} --help"
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "STATE_ROOT": str(tmp_path / "state"),
           "OUTPUT_ROOT": str(tmp_path / "outputs"), "ORCHESTRATOR_PORT": "18999"}
    result = subprocess.run(["bash", "-c", f"source .venv/bin/activate && {command}"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in result.stderr and result.returncode != 127, f"{doc}: {command}\n{result.stderr}"
    if line in AS_PRINTED:
        said = result.stdout + result.stderr
        assert result.returncode in (0, 1) and ("not running" in said or "no intervals" in said
                                                or "not written yet" in said or "rows" in said), said
    else:
        assert result.returncode == 0, f"{doc}: {command}\n{result.stderr}"
