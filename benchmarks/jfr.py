"""What the executors' task threads were running, from Java Flight Recorder recordings.

The stages step (benchmarks/stages.py) says how long each stage took; this says on what code.
Executors record with `-XX:StartFlightRecording` (JDK 17 has it built in, nothing to install);
`jfr print` turns a recording into text, read here as a stream (a recording of a few minutes
prints hundreds of MB). Java samples (`jdk.ExecutionSample`) and samples of threads inside native
code (`jdk.NativeMethodSample`: RocksDB, socket reads) both count, for task threads only. A
sample cannot be told to a stage: JFR keeps the name a thread had when it started ("Executor
task launch worker-0"), not the one Spark gives it per task.

Each sample goes to the first component found walking its stack from the running frame to the
thread's root: a string hash inside generated code is generated code; lz4 inside the Kafka
consumer is decompression.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

# (component, frame prefixes). The leaf-most frame that matches decides; a frame that matches two
# components goes to the one listed first.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("state store", ("org.rocksdb.", "org.apache.spark.sql.execution.streaming.state.")),
    # variant_get to a SQL type builds a Literal and a Cast per value (each reading SQLConf).
    ("VARIANT cast per value", ("org.apache.spark.sql.catalyst.expressions.variant.VariantGet$.cast",)),
    ("JSON parse", ("org.apache.spark.types.variant.VariantBuilder.parseJson", "com.fasterxml.jackson.")),
    ("VARIANT look-ups", ("org.apache.spark.types.variant.", "org.apache.spark.sql.catalyst.expressions.variant.")),
    ("Kafka consumer", ("org.apache.kafka.", "org.apache.spark.sql.kafka010.")),
    ("compression", ("net.jpountz.", "com.github.luben.", "org.xerial.snappy.", "io.airlift.compress.")),
    ("Parquet write", ("org.apache.parquet.", "shaded.parquet.",
                       "org.apache.spark.sql.execution.datasources.parquet.")),
    ("sort", ("org.apache.spark.util.collection.unsafe.sort.",
              "org.apache.spark.sql.execution.UnsafeKVExternalSorter")),
    ("aggregation", ("org.apache.spark.sql.execution.aggregate.",)),
    ("shuffle", ("org.apache.spark.shuffle.", "org.apache.spark.storage.", "org.apache.spark.network.",
                 "org.apache.spark.serializer.")),
    ("generated code", ("org.apache.spark.sql.catalyst.expressions.GeneratedClass",)),
]
OTHER = "other"
TASK_THREAD = "Executor task launch worker"
SAMPLE_EVENTS = ("jdk.ExecutionSample", "jdk.NativeMethodSample")
GC_EVENT = "jdk.GarbageCollection"


def component(frames: list[str]) -> str:
    """The component of a stack (frames from the running one down), by COMPONENTS."""
    for frame in frames:
        for name, prefixes in COMPONENTS:
            if frame.startswith(prefixes):
                return name
    return OTHER


def task_samples(lines: Iterable[str]) -> Iterator[list[str]]:
    """The frames (running one first) of each task-thread sample in `jfr print` text output."""
    task = False
    frames: list[str] | None = None
    for line in lines:
        text = line.strip()
        if text.endswith("{") and text[:-1].strip() in SAMPLE_EVENTS:
            task, frames = False, None
        elif text.startswith("sampledThread = "):
            task = text.startswith(f'sampledThread = "{TASK_THREAD}')
        elif text == "stackTrace = [":
            frames = []
        elif frames is not None and text == "]":
            if task and frames:
                yield frames
            frames = None
        elif frames is not None and text != "...":
            frames.append(text.split("(", 1)[0])


def jfr_lines(recording: Path, events: Iterable[str] = (*SAMPLE_EVENTS, GC_EVENT),
              stack_depth: int = 64) -> Iterator[str]:
    """`jfr print` output of `events`, line by line, from the JDK that runs Spark (JAVA_HOME) or PATH's."""
    home = os.environ.get("JAVA_HOME")
    jfr = str(Path(home) / "bin" / "jfr") if home and (Path(home) / "bin" / "jfr").exists() else shutil.which("jfr")
    if jfr is None:
        raise SystemExit("the `jfr` tool of the JDK is not in $JAVA_HOME/bin nor on PATH")
    cmd = [jfr, "print", "--stack-depth", str(stack_depth), "--events", ",".join(events), str(recording)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        yield from proc.stdout
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")


def summarize(samples: Iterable[list[str]]) -> tuple[Counter, Counter]:
    """Samples per component, and how often each method was the running one."""
    components: Counter = Counter()
    running: Counter = Counter()
    for frames in samples:
        components[component(frames)] += 1
        running[frames[0]] += 1
    return components, running


_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}


def gc_pause_seconds(lines: Iterable[str]) -> float:
    """Total stop-the-world GC pause time in `jfr print --events jdk.GarbageCollection` output."""
    total = 0.0
    for line in lines:
        name, _, value = line.strip().partition(" = ")
        if name == "sumOfPauses":
            number, unit = value.split()
            total += float(number) * _SECONDS[unit]
    return total


def profile(recordings: Iterable[Path]) -> tuple[Counter, Counter, float]:
    """`summarize` of the task-thread samples and the GC pause seconds of `recordings`, printing
    each recording once."""
    gc = 0.0

    def lines() -> Iterator[str]:
        nonlocal gc
        for recording in recordings:
            for line in jfr_lines(recording):
                if line.lstrip().startswith("sumOfPauses = "):
                    gc += gc_pause_seconds([line])
                yield line

    components, running = summarize(task_samples(lines()))
    return components, running, gc
