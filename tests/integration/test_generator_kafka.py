"""The generator against the real broker: what lands on Kafka equals the ground-truth files."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.helpers import Run

pytestmark = pytest.mark.integration


def consume_all(topic: str) -> list[tuple[bytes | None, bytes | None]]:
    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:9092", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    records = []
    while any(consumer.position(p) < end[p] for p in parts):
        for batch in consumer.poll(timeout_ms=2000, max_records=5000).values():
            records.extend((r.key, r.value) for r in batch)
    consumer.close()
    return records


@pytest.mark.parametrize(("client", "processes"), [("librdkafka", "1"), ("kafka-python", "1"), ("librdkafka", "2")])
def test_records_on_kafka_equal_the_ground_truth(stack, tmp_path, client, processes):
    run = Run(tmp_path / "gen", f"gen{uuid.uuid4().hex[:6]}_")
    summary = run.generate("--client", client, "--processes", processes, "--app-events", "3000", "--seed", "3",
                           "--start", "2026-11-23T08:00:00Z",
                           "--malformed-rate", "0.05", "--duplicate-rate", "0.05", "--late-rate", "0.02")
    assert summary["failures"] == 0
    for name, topic in summary["topics"].items():
        truth = [json.loads(line) for line in (run.truth / f"{name}.jsonl").read_text().splitlines()]

        def raw(rec):
            if rec["value"] is None:
                return None
            return rec["value"].encode("latin-1" if rec["binary"] else "utf-8")

        expected = Counter((r["key"].encode() if r["key"] else None, raw(r)) for r in truth)
        got = Counter(consume_all(topic))
        assert sum(got.values()) == len(truth), name
        assert got == expected, name
