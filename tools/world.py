"""A seeded, deterministic world of users, sessions, app events, CDC changes and external data.

Pure Python and free of I/O: `World.records()` yields `Record`s in production order, so that
the generator, tests and benchmarks all see the same stream for the same seed and options.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

PLANS = ("free", "basic", "premium", "enterprise")
PLAN_WEIGHTS = (0.55, 0.25, 0.15, 0.05)
COUNTRIES = {"US": ("New York", "Austin", "Seattle"), "DE": ("Berlin", "Munich"),
             "FR": ("Paris", "Lyon"), "GB": ("London", "Leeds"), "IN": ("Bengaluru", "Pune"),
             "BR": ("Sao Paulo",), "JP": ("Tokyo", "Osaka")}
APP_TYPES = ("web", "ios", "android")
DEVICES = {"web": ("desktop", ("Windows", "macOS", "Linux"), ("PC", "MacBook")),
           "ios": ("mobile", ("iOS",), ("iPhone 15", "iPhone 16", "iPad Air")),
           "android": ("mobile", ("Android",), ("Pixel 9", "Galaxy S25", "Galaxy Tab"))}
PAGES = ("/", "/search", "/category/shoes", "/category/books", "/category/electronics",
         "/product/{n}", "/cart", "/checkout", "/account", "/help")
EXTERNAL_SOURCES = ("weather", "fx_rates", "geo_ip")
TABLES = ("public.users", "public.orders", "public.products")

MALFORMED_KINDS = (
    "truncated_json", "wrong_type", "missing_required", "empty_value", "binary_garbage",
    "huge_value", "bad_timestamp", "json_array", "json_scalar", "null_required", "empty_id",
    "invalid_utf8", "number_timestamp",
)


# One encoder for every record: json.dumps with options builds a new encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
# Version-4 UUID: variant bits 10 (bits 62-63) and version 4 (bits 76-79).
_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_V4 = (0x8000 << 48) | (0x4000 << 64)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes | None
    kind: str = "valid"          # valid | malformed | duplicate | late | tombstone
    event_time: datetime | None = None
    note: str = ""

    def truth_line(self) -> str:
        """One ground-truth JSON line; values that are not UTF-8 are given as latin-1 + a flag.

        ASCII-only, so that no reader splits a line on a Unicode line break inside a value."""
        value: str | None
        binary = False
        if self.value is None:
            value = None
        else:
            try:
                value = self.value.decode("utf-8")
            except UnicodeDecodeError:
                value, binary = self.value.decode("latin-1"), True
        return json.dumps({"topic": self.topic, "key": self.key.decode() if self.key else None,
                           "value": value, "binary": binary, "kind": self.kind, "note": self.note},
                          ensure_ascii=True)


@dataclass
class WorldOptions:
    seed: int = 42
    users: int = 500
    app_events: int = 10_000
    start: datetime = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    sessions_per_minute: float = 20.0
    malformed_rate: float = 0.0
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    late_delay: timedelta = timedelta(hours=1)
    unknown_user_rate: float = 0.03
    wrapped_cdc_rate: float = 0.5
    external_every: timedelta = timedelta(minutes=5)
    # Generation in several processes: shard k of n makes 1/n of the sessions over the same
    # event-time span (own random stream, disjoint order ids); the snapshot and external data come
    # from shard 0 only. One shard (the default) is the whole world.
    shard: int = 0
    shards: int = 1


class World:
    """Everything the generator produces, deterministic for a given `WorldOptions`."""

    def __init__(self, options: WorldOptions):
        self.o = options
        self.rng = random.Random(options.seed)
        self.users = [self._make_user(i) for i in range(options.users)]
        if options.shards > 1:
            self.rng = random.Random(f"{options.seed}:{options.shard}/{options.shards}")
        self._seq = 0
        self._orders: dict[int, dict] = {}
        self._next_order = 1 + options.shard * 1_000_000_000
        self._lsn = 10_000_000 + options.shard * 10**13
        self._tx = 1000 + options.shard * 1_000_000_000
        self.counts: dict[str, int] = {}

    # -- master data -----------------------------------------------------------------------------

    def _make_user(self, i: int) -> dict:
        country = self.rng.choice(sorted(COUNTRIES))
        return {
            "user_id": f"user_{i:06d}",
            "signup_date": (date(2024, 1, 1) + timedelta(days=self.rng.randrange(0, 690))).isoformat(),
            "country": country,
            "plan": self.rng.choices(PLANS, PLAN_WEIGHTS)[0],
            "city": self.rng.choice(COUNTRIES[country]),
            "email": f"user{i}@example.com",
        }

    def user_master_rows(self) -> list[dict]:
        return [{k: u[k] for k in ("user_id", "signup_date", "country", "plan")} for u in self.users]

    # -- helpers ---------------------------------------------------------------------------------

    def _uuid(self) -> str:
        """A random version-4 UUID (as uuid.UUID(int=..., version=4) gives), formatted directly."""
        n = (self.rng.getrandbits(128) & _UUID_KEEP) | _UUID_V4
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _json(self, obj: dict) -> bytes:
        return _COMPACT.encode(obj).encode()

    def _push(self, heap: list, due: datetime, record: Record) -> None:
        self._seq += 1
        heapq.heappush(heap, (due, self._seq, record))

    # -- the stream ------------------------------------------------------------------------------

    def records(self) -> Iterator[Record]:
        """All records in production order (roughly event-time order, late ones held back)."""
        heap: list[tuple[datetime, int, Record]] = []  # (due, sequence, record)
        o = self.o
        produced_events = 0
        quota = o.app_events // o.shards + (1 if o.shard < o.app_events % o.shards else 0)
        t = o.start
        if o.shard == 0:
            yield from self._snapshot(t)
            next_external = t
        else:
            next_external = datetime.max.replace(tzinfo=UTC)
        mean_gap = 60.0 * o.shards / o.sessions_per_minute
        while produced_events < quota:
            t = t + timedelta(seconds=self.rng.expovariate(1.0 / mean_gap))
            while heap and heap[0][0] <= t:
                yield from self._emit(heapq.heappop(heap)[2], heap)
            while next_external <= t:
                for rec in self._external(next_external):
                    self._push(heap, next_external, rec)
                next_external += self.o.external_every
            produced_events += self._session(t, heap)
        # The stream ends at the last regular record: late records not yet due by then are never
        # sent (a late record always arrives `late_delay` behind the stream).
        horizon = max((due for due, _, record in heap if record.kind != "late"), default=t)
        while heap:
            due, _, record = heapq.heappop(heap)
            if record.kind == "late" and due > horizon:
                continue
            yield from self._emit(record, heap)

    def _emit(self, record: Record, heap: list) -> Iterator[Record]:
        """Yield a record with the faults the options ask for."""
        o = self.o
        streams = ("app_events", "clickstream")
        if record.kind == "valid" and record.topic in streams and o.late_rate and self.rng.random() < o.late_rate:
            late = Record(record.topic, record.key, record.value, "late", record.event_time)
            self._push(heap, record.event_time + o.late_delay, late)
            return
        yield self._count(record)
        if (record.kind in ("valid", "late") and record.topic in streams
                and o.duplicate_rate and self.rng.random() < o.duplicate_rate):
            dup = Record(record.topic, record.key, record.value, "duplicate", record.event_time)
            self._push(heap, record.event_time + timedelta(seconds=self.rng.uniform(1, 30)), dup)
        if record.kind in ("valid",) and o.malformed_rate and self.rng.random() < o.malformed_rate:
            yield self._count(self._malformed(record))

    def _count(self, record: Record) -> Record:
        key = f"{record.topic}:{record.kind}"
        self.counts[key] = self.counts.get(key, 0) + 1
        return record

    # -- sessions: clicks and app events ---------------------------------------------------------

    def _session(self, start: datetime, heap: list) -> int:
        rng = self.rng
        if rng.random() < self.o.unknown_user_rate:
            user = {"user_id": f"ghost_{rng.randrange(10_000):05d}", "country": "US", "city": "Austin"}
        else:
            user = rng.choice(self.users)
        app = rng.choices(APP_TYPES, (0.5, 0.25, 0.25))[0]
        dev_type, oses, models = DEVICES[app]
        device = {"type": dev_type if not (app != "web" and "Tab" in models[-1] and rng.random() < 0.1)
                  else "tablet", "os": rng.choice(oses), "model": rng.choice(models)}
        session_id = self._uuid()
        uid = user["user_id"]
        key = uid.encode()
        t = start
        n_pages = 1 + min(int(rng.expovariate(1 / 5)), 25)
        events = 0
        previous = None
        if rng.random() < 0.3:
            events += self._app_event(heap, t, "login", uid, session_id, app, device, user, key)
        for i in range(n_pages):
            page = rng.choice(PAGES).format(n=rng.randrange(1, 200))
            if i == 0 and rng.random() < 0.6:
                page = "/"
            click = {"click_id": self._uuid(), "session_id": session_id, "user_id": uid,
                     "page_url": page, "referrer_url": previous, "element_id": f"el-{rng.randrange(50)}",
                     "app_type": app, "event_timestamp": iso(t)}
            if previous is None:
                click.pop("referrer_url")
            self._push(heap, t, Record("clickstream", session_id.encode(), self._json(click),
                                       event_time=t))
            events += self._app_event(heap, t, "page_view", uid, session_id, app, device, user, key,
                                      {"page": page})
            roll = rng.random()
            if roll < 0.25:
                events += self._app_event(heap, t + timedelta(seconds=1), "click", uid, session_id,
                                          app, device, user, key, {"element": click["element_id"]})
            elif roll < 0.35:
                events += self._app_event(heap, t + timedelta(seconds=2), "search", uid, session_id,
                                          app, device, user, key, {"query": rng.choice(("shoes", "tv", "book"))})
            elif roll < 0.42:
                events += self._app_event(heap, t + timedelta(seconds=2), "add_to_cart", uid,
                                          session_id, app, device, user, key)
            if roll > 0.985:
                events += self._app_event(heap, t + timedelta(seconds=3), "error", uid, session_id,
                                          app, device, user, key, {"code": "500"})
            previous = page
            t = t + timedelta(seconds=rng.uniform(3, 150))
        if rng.random() < 0.08:
            revenue = round(rng.uniform(5, 400), 2)
            events += self._app_event(heap, t, "purchase", uid, session_id, app, device, user, key,
                                      {"currency": "USD"}, revenue=revenue)
            self._order_changes(heap, t, uid, revenue)
        if rng.random() < 0.2:
            events += self._app_event(heap, t + timedelta(seconds=1), "logout", uid, session_id, app,
                                      device, user, key)
        return events

    def _app_event(self, heap, t, event_type, uid, session_id, app, device, user, key,
                   properties=None, revenue=None) -> int:
        event = {"event_id": self._uuid(), "event_type": event_type, "user_id": uid,
                 "session_id": session_id, "app_type": app, "event_timestamp": iso(t),
                 "device": device, "location": {"country": user["country"], "city": user["city"]}}
        if properties:
            event["properties"] = properties
        if revenue is not None:
            event["revenue"] = revenue
        self._push(heap, t, Record("app_events", key, self._json(event), event_time=t))
        return 1

    # -- CDC ------------------------------------------------------------------------------------

    def _envelope(self, table: str, op: str, before, after, t: datetime, snapshot="false") -> bytes:
        self._lsn += self.rng.randrange(8, 200)
        schema, name = table.split(".")
        env = {"before": before, "after": after,
               "source": {"version": "2.7.0.Final", "connector": "postgresql", "name": "shop",
                          "ts_ms": int(t.timestamp() * 1000), "snapshot": snapshot, "db": "shop",
                          "schema": schema, "table": name, "txId": self._tx, "lsn": self._lsn},
               "op": op, "ts_ms": int(t.timestamp() * 1000) + self.rng.randrange(5, 900),
               "transaction": None}
        if self.rng.random() < self.o.wrapped_cdc_rate:
            env = {"schema": {"type": "struct", "name": f"shop.{table}.Envelope", "optional": False},
                   "payload": env}
        return self._json(env)

    def _cdc(self, table, op, before, after, t, snapshot="false", pk=None) -> Record:
        key = self._json({"id": pk}) if pk is not None else None
        return Record("cdc_changes", key, self._envelope(table, op, before, after, t, snapshot),
                      event_time=t, note=f"{table}:{op}")

    def _snapshot(self, t: datetime) -> Iterator[Record]:
        rows = [("public.users", {"id": i + 1, "user_id": u["user_id"], "plan": u["plan"],
                                  "country": u["country"], "email": u["email"]})
                for i, u in enumerate(self.users[:200])]
        rows += [("public.products", {"id": p, "name": f"product {p}", "price": round(1 + p * 1.5, 2)})
                 for p in range(1, 51)]
        self._tx += 1
        for i, (table, row) in enumerate(rows):
            flag = "last" if i == len(rows) - 1 else ("first" if i == 0 else "true")
            yield self._count(self._cdc(table, "r", None, row, t, flag, row["id"]))

    def _order_changes(self, heap, t: datetime, uid: str, revenue: float) -> None:
        rng = self.rng
        self._tx += 1
        oid = self._next_order
        self._next_order += 1
        row = {"id": oid, "user_id": uid, "status": "created", "amount": revenue}
        self._orders[oid] = row
        self._push(heap, t, self._cdc("public.orders", "c", None, row, t, pk=oid))
        t2 = t + timedelta(seconds=rng.uniform(5, 60))
        paid = {**row, "status": "paid"}
        self._push(heap, t2, self._cdc("public.orders", "u", row, paid, t2, pk=oid))
        self._orders[oid] = paid
        roll = rng.random()
        t3 = t2 + timedelta(seconds=rng.uniform(5, 60))
        if roll < 0.1:
            # A cancelled order is deleted; Kafka log compaction needs the tombstone after it.
            self._push(heap, t3, self._cdc("public.orders", "d", paid, None, t3, pk=oid))
            self._push(heap, t3, Record("cdc_changes", self._json({"id": oid}), None, "tombstone", t3))
        elif roll < 0.15:
            # A primary-key change is a delete of the old key and a create of the new one.
            new_id = self._next_order
            self._next_order += 1
            moved = {**paid, "id": new_id}
            self._push(heap, t3, self._cdc("public.orders", "d", paid, None, t3, pk=oid))
            self._push(heap, t3, Record("cdc_changes", self._json({"id": oid}), None, "tombstone", t3))
            self._push(heap, t3, self._cdc("public.orders", "c", None, moved, t3, pk=new_id))
        elif roll < 0.25 and self.users:
            i = rng.randrange(min(200, len(self.users)))
            user_after = {"id": i + 1, "user_id": self.users[i]["user_id"],
                          "plan": rng.choice(PLANS), "country": self.users[i]["country"],
                          "email": self.users[i]["email"]}
            # REPLICA IDENTITY DEFAULT on users: `before` holds only the key.
            self._push(heap, t3, self._cdc("public.users", "u", {"id": i + 1}, user_after, t3, pk=i + 1))
        if oid % 40 == 0:
            # Now and then the products table is truncated (a catalogue reload).
            self._push(heap, t3, self._cdc("public.products", "t", None, None, t3))

    # -- external data --------------------------------------------------------------------------

    def _external(self, t: datetime) -> list[Record]:
        rng = self.rng
        out = []
        for source in EXTERNAL_SOURCES:
            if source == "weather":
                payload = {"city": rng.choice(("Berlin", "Paris", "Austin")),
                           "temp_c": round(rng.uniform(-5, 30), 1), "conditions": rng.choice(("sun", "rain"))}
            elif source == "fx_rates":
                payload = {"base": "USD", "rates": {"EUR": round(rng.uniform(0.85, 0.95), 4),
                                                    "GBP": round(rng.uniform(0.7, 0.8), 4)}}
            else:
                payload = {"ip_prefix": f"10.{rng.randrange(256)}.0.0/16", "country": rng.choice(sorted(COUNTRIES))}
            rec = {"record_id": self._uuid(), "source": source,
                   "fetched_at": iso(t), "payload": payload}
            out.append(Record("external_data", source.encode(), self._json(rec), event_time=t))
        return out

    # -- malformed records ----------------------------------------------------------------------

    def _malformed(self, like: Record) -> Record:
        kind = self.rng.choice(MALFORMED_KINDS)
        text = like.value.decode() if like.value else "{}"
        obj = json.loads(text)
        first = next(iter(obj)) if obj else "x"
        cdc = like.topic == "cdc_changes"
        if cdc:
            obj = obj.get("payload", obj)
            first = "op"
        ts_field = "fetched_at" if like.topic == "external_data" else "event_timestamp"
        makers = {
            "truncated_json": lambda: text[: max(1, len(text) // 2)].encode(),
            "wrong_type": lambda: self._json({**obj, first: 12345}),
            "missing_required": lambda: self._json({k: v for k, v in obj.items() if k != first}),
            "empty_value": lambda: b"",
            "binary_garbage": lambda: bytes(self.rng.randrange(256) for _ in range(40)),
            "huge_value": lambda: self._json({**obj, first: None, "blob": "x" * 300_000}),
            "bad_timestamp": lambda: self._json({**obj, "op": "zz"} if cdc
                                                else {**obj, ts_field: "25/11/2026 20:01"}),
            "json_array": lambda: json.dumps([obj]).encode(),
            "json_scalar": lambda: b'"just a string"',
            "null_required": lambda: self._json({**obj, first: None}),
            "empty_id": lambda: self._json({**obj, first: ""}),
            "invalid_utf8": lambda: b'{"' + first.encode() + b'": "\xff\xfe\xfa"',
            "number_timestamp": lambda: self._json({**obj, "source": 7} if cdc
                                                   else {**obj, ts_field: 1764100914}),
        }
        value = makers[kind]()
        return Record(like.topic, like.key, value, "malformed", like.event_time, note=kind)
