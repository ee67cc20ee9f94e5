"""The layout of each topic's records (CONTRACT §1) and of the quarantine (CONTRACT §2).

One declaration per topic: validation checks its required fields, extraction reads them, and
`RecordLayout.ddl` gives the same layout as a `from_json` schema (what a plain Spark job would
use; the benchmarks' peer). No pyspark here: the schema is a DDL string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

STRING, NUMBER, OBJECT, TIMESTAMP = "string", "number", "object", "timestamp"
KINDS = (STRING, NUMBER, OBJECT, TIMESTAMP)

# The Spark type a field of each kind gets in a `from_json` schema. Timestamps stay strings, so
# that an unparseable one is told apart from a missing one; an object of any JSON is a VARIANT.
_DDL = {STRING: "string", NUMBER: "double", OBJECT: "variant", TIMESTAMP: "string"}


@dataclass(frozen=True)
class Field:
    """One field of a record. `spark_type` is the DDL type it is extracted as, when it is more
    specific than its kind (an object with known fields, a map, a whole number)."""

    name: str
    kind: str
    required: bool = True
    spark_type: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: unknown kind {self.kind!r} (one of {', '.join(KINDS)})")

    @property
    def ddl_type(self) -> str:
        return self.spark_type or _DDL[self.kind]


@dataclass(frozen=True)
class RecordSpec:
    """What validation checks: the required fields of a record and their kinds."""

    required: Mapping[str, str]

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.required.items() if v not in KINDS}
        if bad:
            raise ValueError(f"unknown field kinds {bad}")


@dataclass(frozen=True)
class RecordLayout:
    fields: tuple[Field, ...]

    @property
    def spec(self) -> RecordSpec:
        return RecordSpec({f.name: f.kind for f in self.fields if f.required})

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def ddl(self) -> str:
        """The layout as a `from_json` schema (DDL)."""
        return ", ".join(f"`{f.name}` {f.ddl_type}" for f in self.fields)

    def struct(self) -> str:
        """The layout as the DDL type of a nested object."""
        return f"struct<{','.join(f'{f.name}:{f.ddl_type}' for f in self.fields)}>"


DEVICE = "struct<type:string,os:string,model:string>"
LOCATION = "struct<country:string,city:string>"

APP_EVENTS = RecordLayout((
    Field("event_id", STRING), Field("event_type", STRING), Field("user_id", STRING),
    Field("session_id", STRING), Field("app_type", STRING), Field("event_timestamp", TIMESTAMP),
    Field("device", OBJECT, required=False, spark_type=DEVICE),
    Field("location", OBJECT, required=False, spark_type=LOCATION),
    Field("properties", OBJECT, required=False, spark_type="map<string,string>"),
    Field("revenue", NUMBER, required=False),
))
CLICKSTREAM = RecordLayout((
    Field("click_id", STRING), Field("session_id", STRING), Field("user_id", STRING),
    Field("page_url", STRING), Field("referrer_url", STRING, required=False),
    Field("element_id", STRING, required=False), Field("app_type", STRING),
    Field("event_timestamp", TIMESTAMP),
))
EXTERNAL_DATA = RecordLayout((
    Field("record_id", STRING), Field("source", STRING), Field("fetched_at", TIMESTAMP),
    Field("payload", OBJECT),
))

# The Debezium envelope (cdc_changes). Which fields a change needs depends on its op, so the
# envelope's fields are all optional here and `transforms.cdc` checks them op by op.
DEBEZIUM_SOURCE = RecordLayout((
    Field("version", STRING, False), Field("connector", STRING, False), Field("name", STRING, False),
    Field("ts_ms", NUMBER, False, "bigint"), Field("snapshot", STRING, False), Field("db", STRING, False),
    Field("schema", STRING, False), Field("table", STRING, False), Field("txId", NUMBER, False, "bigint"),
    Field("lsn", NUMBER, False, "bigint"),
))
DEBEZIUM_ENVELOPE = RecordLayout((
    Field("before", OBJECT, False), Field("after", OBJECT, False),
    Field("source", OBJECT, False, DEBEZIUM_SOURCE.struct()),
    Field("op", STRING, False), Field("ts_ms", NUMBER, False, "bigint"), Field("transaction", OBJECT, False),
))

TOPIC_LAYOUTS: dict[str, RecordLayout] = {
    "app_events": APP_EVENTS,
    "clickstream": CLICKSTREAM,
    "external_data": EXTERNAL_DATA,
    "cdc_changes": DEBEZIUM_ENVELOPE,
}

APP_EVENTS_SPEC = APP_EVENTS.spec
CLICKSTREAM_SPEC = CLICKSTREAM.spec
EXTERNAL_DATA_SPEC = EXTERNAL_DATA.spec

# The quarantine (CONTRACT §2), in order, plus what the project adds: the exact bytes and the
# partition column.
QUARANTINE_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp", "raw_value", "error")
QUARANTINE_EXTRA_COLUMNS = ("raw_value_base64", "quarantine_date")
