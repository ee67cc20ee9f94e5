"""Typed settings of the platform, read from the environment (and an optional `.env` file).

Every field maps to the environment variable of the same name in upper case, e.g.
`kafka_bootstrap_servers` <- `KAFKA_BOOTSTRAP_SERVERS`. Tests build `Settings(...)` directly
instead of patching globals. The job registry (which jobs exist, how they run, when and how they
restart) lives in `configs/jobs.yaml` and is validated by `load_job_registry()`.
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from configs import locations

PROJECT_ROOT = Path(__file__).resolve().parent.parent
JOB_REGISTRY_PATH = PROJECT_ROOT / "configs" / "jobs.yaml"

_DURATION = re.compile(r"^\d+\s+(second|minute|hour|day)s?$")
_MEMORY = re.compile(r"^\d+[kmgt]$", re.IGNORECASE)
_SECRET_KEY = re.compile(r"password|secret|jaas|token|key$|credential", re.IGNORECASE)

TOPICS = ("app_events", "clickstream", "cdc_changes", "external_data")

# A Path given in code (tests) is taken as its text; the environment gives text anyway.
Location = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, Path) else v),
                     AfterValidator(locations.normalize)]


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _check_duration(value: str) -> str:
    if not _DURATION.match(value.strip()):
        raise ValueError(f"expected an interval such as '2 minutes', got {value!r}")
    return value.strip()


def duration_seconds(text: str) -> float:
    """'10 seconds' -> 10.0, '2 minutes' -> 120.0 (the format every duration setting uses)."""
    number, unit = _check_duration(text).split()
    return int(number) * _UNIT_SECONDS[unit.rstrip("s")]


def _check_memory(value: str) -> str:
    if not _MEMORY.match(value.strip()):
        raise ValueError(f"expected a JVM memory size such as '512m' or '2g', got {value!r}")
    return value.strip().lower()


class Settings(BaseSettings):
    """All operator-facing settings, with defaults sized for a 2-core, 24 GB machine."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # Where things run and land
    spark_master_url: str = "spark://127.0.0.1:7077"
    app_name_prefix: str = "data-platform"
    # Locations (configs/locations.py): a path, file://..., or s3a://bucket/prefix.
    output_root: Location = str(PROJECT_ROOT / "outputs")
    checkpoint_root: Location = str(PROJECT_ROOT / "checkpoints")
    state_root: Path = PROJECT_ROOT / "state"
    log_dir: Path = PROJECT_ROOT / "logs"
    user_master_path: Location = str(PROJECT_ROOT / "data" / "user_master")
    jars_dir: Path = PROJECT_ROOT / ".jars"

    # Spark sizing
    spark_driver_memory: str = "1g"
    # 2g measured 1.14 / 1.20 of 1g in the tuning sweep (benchmarks/history.md, 2026-11-26 11:38).
    spark_executor_memory: str = "2g"
    spark_executor_cores: int = Field(default=2, ge=1)
    spark_cores_max: int = Field(default=2, ge=1)
    spark_shuffle_partitions: int = Field(default=2, ge=1)
    spark_log_level: str = "WARN"
    # Any other Spark setting, JSON object applied last, e.g.
    # {"spark.sql.streaming.stateStore.providerClass": "...HDFSBackedStateStoreProvider"}
    spark_extra_conf: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    spark_ui_enabled: bool = True
    # Class-data sharing: driver and executor JVMs map the classes a training run recorded
    # (python -m tools.cds; `make stack-up` builds them) instead of loading them from the jars
    # (start-up figures: BENCHMARKS.md). A missing or stale archive is ignored by the JVM.
    spark_cds_enabled: bool = True
    spark_cds_dir: Path = PROJECT_ROOT / ".jars" / "cds"
    # A streaming job's driver JVM compiles with C1 only (-XX:TieredStopAtLevel=1): the driver
    # plans and coordinates, and on a small host C2's compiler threads take the cores from the
    # first micro-batches. The executors keep both compilers (figures: BENCHMARKS.md, start-up).
    spark_driver_c1_only: bool = True
    # Spark event logs (for the History Server): on by default, under STATE_ROOT/spark-events.
    spark_event_log_enabled: bool = True
    spark_event_log_dir: Path | None = None
    spark_history_ui_url: str = "http://127.0.0.1:18080"

    # Streaming
    trigger_interval: str = "10 seconds"
    # Below the orchestrator's SIGKILL timeout (configs/jobs.yaml, 60 s): the job's own stop comes first.
    stop_timeout_seconds: float = Field(default=45.0, gt=0)
    # How the orchestrator launches jobs: spark-submit to SPARK_MASTER_URL, or the job script
    # under this Python (the job then builds its session for SPARK_MASTER_URL itself).
    orchestrator_launcher: Literal["spark-submit", "python"] = "spark-submit"
    orchestrator_host: str = "127.0.0.1"
    orchestrator_port: int = Field(default=8099, ge=1, le=65535)
    # How far back a (re)started orchestrator catches up missed batch intervals.
    orchestrator_catchup_hours: float = Field(default=24.0, gt=0)
    job_registry_path: Path = JOB_REGISTRY_PATH
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Where drivers are reached and bind (containers: the orchestrator's name / 0.0.0.0).
    spark_driver_host: str = "127.0.0.1"
    spark_driver_bind_address: str = "127.0.0.1"

    # Object storage (S3A), used when a location is s3a://. With an endpoint (MinIO, moto, Ceph),
    # requests go to it with path-style access. Credentials: the standard AWS variables, or
    # without them the AWS default chain (instance profile, ~/.aws); never logged nor put on a
    # command line.
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Extra consumer/producer options passed through as `kafka.<name>`, JSON object, e.g.
    # {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.jaas.config": "..."}
    kafka_extra_options: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    kafka_starting_offsets: str = "earliest"
    kafka_max_offsets_per_trigger: int | None = Field(default=200_000, ge=1)
    kafka_fail_on_data_loss: bool = True
    kafka_topic_partitions: int = Field(default=2, ge=1)
    topic_app_events: str = "app_events"
    topic_clickstream: str = "clickstream"
    topic_cdc_changes: str = "cdc_changes"
    topic_external_data: str = "external_data"

    # Per-job event-time settings
    event_aggregation_window: str = "1 minute"
    event_aggregation_watermark: str = "2 minutes"
    clickstream_session_gap: str = "30 minutes"
    clickstream_watermark: str = "5 minutes"
    cdc_summary_window: str = "1 minute"
    cdc_watermark: str = "2 minutes"
    enrichment_watermark: str = "10 minutes"
    # How long a streaming job waits at start for its broker and topics before it gives up with
    # exit code 78 (utils/preflight.py).
    startup_check_seconds: float = Field(default=60.0, ge=0)
    user_master_refresh_seconds: int = Field(default=300, ge=1)

    @field_validator("kafka_extra_options", "spark_extra_conf", mode="before")
    @classmethod
    def _parse_json_object(cls, value: object, info: ValidationInfo) -> object:
        """A JSON object from the environment -> dict of strings."""
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"{info.field_name.upper()} must be a JSON object: {exc}") from exc
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("kafka_extra_options")
    @classmethod
    def _strip_kafka_prefix(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.removeprefix("kafka."): v for k, v in value.items()}

    @field_validator("spark_extra_conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [k for k in value if not k.startswith("spark.")]
        if wrong:
            raise ValueError(f"SPARK_EXTRA_CONF keys must start with 'spark.', got {wrong}")
        return value

    @field_validator(
        "trigger_interval",
        "event_aggregation_window",
        "event_aggregation_watermark",
        "clickstream_session_gap",
        "clickstream_watermark",
        "cdc_summary_window",
        "cdc_watermark",
        "enrichment_watermark",
    )
    @classmethod
    def _durations(cls, value: str) -> str:
        return _check_duration(value)

    @field_validator("spark_driver_memory", "spark_executor_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        return _check_memory(value)

    @field_validator("kafka_starting_offsets")
    @classmethod
    def _offsets(cls, value: str) -> str:
        if value not in ("earliest", "latest") and not value.lstrip().startswith("{"):
            raise ValueError("expected 'earliest', 'latest' or a JSON offsets object")
        return value

    @property
    def topics(self) -> dict[str, str]:
        """Contract topic name -> configured Kafka topic."""
        return {
            "app_events": self.topic_app_events,
            "clickstream": self.topic_clickstream,
            "cdc_changes": self.topic_cdc_changes,
            "external_data": self.topic_external_data,
        }

    def kafka_options(self) -> dict[str, str]:
        """Options for the Spark Kafka source/sink, `kafka.`-prefixed where Kafka expects it."""
        options = {"kafka.bootstrap.servers": self.kafka_bootstrap_servers}
        options.update({f"kafka.{k}": v for k, v in self.kafka_extra_options.items()})
        return options

    def redacted(self) -> dict[str, object]:
        """The settings as a dict fit for logs: secret-looking Kafka and Spark options are masked."""
        data = self.model_dump(mode="json")
        for name in ("kafka_extra_options", "spark_extra_conf"):
            data[name] = {k: ("***" if is_secret_key(k) else v) for k, v in getattr(self, name).items()}
        return data

    @property
    def event_log_dir(self) -> Path:
        return self.spark_event_log_dir or self.state_root / "spark-events"

    def dataset_path(self, name: str) -> str:
        return locations.join(self.output_root, name)

    def quarantine_path(self, topic: str) -> str:
        return locations.join(self.output_root, "_quarantine", topic)

    def checkpoint_path(self, job: str, query: str) -> str:
        return locations.join(self.checkpoint_root, job, query)

    def standby_file(self, job: str) -> Path:
        """Where a job's warm standby writes its pid once it waits for activation (supervisor/standby.py)."""
        return self.state_root / "standby" / f"{job}.ready"

    @property
    def uses_object_store(self) -> bool:
        return any(locations.is_object_store(x) for x in (self.output_root, self.checkpoint_root,
                                                           self.user_master_path))


def is_secret_key(key: str) -> bool:
    """A setting whose value must not be logged nor put on a command line."""
    return bool(_SECRET_KEY.search(key))


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into readable ones."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def settings_for_env(env: dict[str, str]) -> Settings:
    """The settings a child process started with `env` will have (what a launcher builds its
    command from: a job's S3 locations need the S3A class path on its command line)."""
    return load_settings(**{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields})


def load_cli_settings(prog: str) -> Settings:
    """load_settings for a command line: an invalid variable ends it with exit code 2, named."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()


class RestartPolicy(BaseModel):
    """When and how the orchestrator restarts a job (supervisord-style)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    autorestart: Literal["always", "on-failure", "never"] = "on-failure"
    start_seconds: float = Field(default=30.0, ge=0)
    backoff_initial_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    stable_seconds: float = Field(default=300.0, ge=0)
    max_consecutive_failures: int = Field(default=5, ge=1)
    stop_timeout_seconds: float = Field(default=60.0, gt=0)
    # 0 disables the staleness check (jobs that report no streaming progress).
    stale_progress_triggers: int = Field(default=12, ge=0)
    # ...but never less than this: a cold start or a large first batch reports nothing for a while.
    stale_progress_min_seconds: float = Field(default=600.0, ge=0)


class Upstream(BaseModel):
    """A streaming query whose output a batch job reads: an interval of the batch job is ready
    once this query has committed a micro-batch whose event-time watermark is at least the
    interval's end plus `margin` (utils/readiness.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str
    query: str
    # Extra event time the watermark must pass, e.g. for sessions that close a gap after their
    # last click and may run past the end of the day.
    margin: str = "0 seconds"

    @field_validator("margin")
    @classmethod
    def _margin(cls, value: str) -> str:
        return _check_duration(value)

    @property
    def label(self) -> str:
        return f"{self.job}/{self.query}"


class JobSpec(BaseModel):
    """One entry of the job registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["streaming", "batch"]
    script: str
    description: str = ""
    args: tuple[str, ...] = ()
    # Streaming only: the contract topics it reads (for the Kafka lag metric).
    topics: tuple[Literal["app_events", "clickstream", "cdc_changes", "external_data"], ...] = ()
    # Batch only: a cron expression (UTC) and the interval a run covers.
    schedule: str | None = None
    interval: Literal["hour", "day"] | None = None
    # Batch only: the streaming queries whose outputs it reads (readiness), and how many
    # intervals one run (one Spark application) may cover in a catch-up or backfill.
    upstream: tuple[Upstream, ...] = ()
    max_range: int = Field(default=1, ge=1)
    restart: RestartPolicy = RestartPolicy()
    enabled: bool = True
    # Streaming only: keep a warm standby driver that takes over when the running one crashes
    # (supervisor/standby.py). It holds a Spark application and its executors while it waits.
    standby: bool = False

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}")
        return value

    @model_validator(mode="after")
    def _batch_needs_schedule(self) -> JobSpec:
        if self.kind == "batch" and (self.schedule is None or self.interval is None):
            raise ValueError(f"batch job {self.name!r} needs a schedule and an interval")
        if self.kind == "batch" and self.standby:
            raise ValueError(f"batch job {self.name!r}: standby is for streaming jobs only")
        if not (PROJECT_ROOT / self.script).is_file():
            raise ValueError(f"job {self.name!r}: script {self.script!r} does not exist")
        return self

    @property
    def script_path(self) -> Path:
        return PROJECT_ROOT / self.script


def load_job_registry(path: Path | None = None) -> dict[str, JobSpec]:
    """Read and validate the job registry: the one list of jobs the orchestrator runs.

    `JOB_REGISTRY_PATH` points at another registry file (tests, other deployments).
    """
    path = path or load_settings().job_registry_path
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    defaults = raw.get("defaults", {})
    jobs: dict[str, JobSpec] = {}
    for name, spec in (raw.get("jobs") or {}).items():
        restart = {**defaults.get("restart", {}), **(spec.pop("restart", None) or {})}
        jobs[name] = JobSpec(name=name, restart=RestartPolicy(**restart), **spec)
    for spec in jobs.values():
        for up in spec.upstream:
            if up.job not in jobs or jobs[up.job].kind != "streaming":
                raise ValueError(f"job {spec.name!r}: upstream {up.job!r} is not a streaming job of the registry")
    return jobs
