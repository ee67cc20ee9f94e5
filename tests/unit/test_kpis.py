"""The batch roll-ups' own selection logic, checked against plain Python over the same rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from utils import kpis


@pytest.fixture
def berlin_process_tz(monkeypatch):
    """The Python process in a time zone other than UTC, as on a developer's laptop."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_events_in_hour_selects_the_utc_hour_whatever_the_process_time_zone(spark, berlin_process_tz):
    first = datetime(2026, 11, 26, 21, 40, tzinfo=UTC)
    stamps = [first + timedelta(minutes=7 * i) for i in range(40)]  # 21:40 to 02:13 UTC, across midnight
    events = spark.createDataFrame([(f"e{i}", ts) for i, ts in enumerate(stamps)],
                                   "event_id string, event_timestamp timestamp")
    for hour in (datetime(2026, 11, 26, 23, tzinfo=UTC), datetime(2026, 11, 27, 0, tzinfo=UTC)):
        expected = {f"e{i}" for i, ts in enumerate(stamps) if hour <= ts < hour + timedelta(hours=1)}
        got = {r.event_id for r in kpis.events_in_hour(events, hour).collect()}
        assert expected and got == expected, hour


def test_events_in_hour_refuses_a_naive_hour(spark):
    events = spark.createDataFrame([("e0", datetime(2026, 11, 26, 23, 5, tzinfo=UTC))],
                                   "event_id string, event_timestamp timestamp")
    with pytest.raises(ValueError, match="time-zone aware"):
        kpis.events_in_hour(events, datetime(2026, 11, 26, 23))
