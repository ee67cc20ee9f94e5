"""The topics' record layouts (utils/transforms/records.py) agree with the contract's tables, and
their `from_json` schema reads a contract record."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from utils.transforms.records import NUMBER, OBJECT, STRING, TIMESTAMP, TOPIC_LAYOUTS, Field

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "CONTRACT.md"


def contract_fields(topic: str) -> dict[str, tuple[str, bool]]:
    """field -> (kind, required) from the contract's table of `topic`, read independently."""
    section = CONTRACT.read_text().split(f"### `{topic}`", 1)[1].split("###", 1)[0]
    fields = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("field", "") or set(cells[0]) <= {"-"}:
            continue
        type_text, required = cells[1], cells[2].startswith("yes")
        kind = (TIMESTAMP if "timestamp" in type_text else STRING if type_text.startswith("string")
                else NUMBER if type_text.startswith("number") else OBJECT)
        fields[cells[0]] = (kind, required)
    return fields


@pytest.mark.parametrize("topic", ["app_events", "clickstream", "external_data"])
def test_layout_equals_the_contract_table(topic):
    layout = TOPIC_LAYOUTS[topic]
    assert {f.name: (f.kind, f.required) for f in layout.fields} == contract_fields(topic)


def test_debezium_envelope_has_the_contract_fields():
    text = CONTRACT.read_text()
    envelope = {f.name for f in TOPIC_LAYOUTS["cdc_changes"].fields}
    assert envelope == {"before", "after", "source", "op", "ts_ms", "transaction"}
    source = re.search(r"`source` `\{([^}]*)\}`", text).group(1)
    declared = TOPIC_LAYOUTS["cdc_changes"].field("source").ddl_type
    assert [n.strip() for n in source.split(",")] == re.findall(r"(\w+):", declared)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind 'text'"):
        Field("x", "text")


def test_from_json_schema_reads_a_contract_record_of_each_topic(spark):
    records = {
        "app_events": {"event_id": "e1", "event_type": "purchase", "user_id": "u1", "session_id": "s1",
                       "app_type": "web", "event_timestamp": "2026-11-25T20:01:54.123Z",
                       "device": {"type": "mobile", "os": "iOS", "model": "X"}, "revenue": 9.5,
                       "properties": {"k": "v"}, "location": {"country": "DE", "city": "Berlin"}},
        "clickstream": {"click_id": "c1", "session_id": "s1", "user_id": "u1", "page_url": "/a",
                        "app_type": "web", "event_timestamp": "2026-11-25T20:01:54Z"},
        "external_data": {"record_id": "r1", "source": "weather", "fetched_at": "2026-11-25T20:00:00Z",
                          "payload": {"t": [1, 2], "ok": True}},
        "cdc_changes": {"before": None, "after": {"id": 1}, "op": "c", "ts_ms": 2,
                        "source": {"table": "orders", "ts_ms": 1, "lsn": 7, "snapshot": "false"}},
    }
    for topic, record in records.items():
        row = (spark.createDataFrame([(json.dumps(record),)], "value string")
               .select(F.from_json("value", TOPIC_LAYOUTS[topic].ddl()).alias("r")).select("r.*").first())
        required = [f.name for f in TOPIC_LAYOUTS[topic].fields if f.required]
        assert all(row[name] is not None for name in required), (topic, row)
    assert row.source.lsn == 7 and row.op == "c"
