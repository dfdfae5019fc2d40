"""Independent checks of what trawl writes, with pyarrow and Python's json module.

  verify.py parquet STORE_DIR ROWS    every live Parquet file of a store read by pyarrow:
                                      the row count, eventtime as a UTC timestamp, nested columns,
                                      the Delta statistics of its add action
  verify.py export EXPORT FIXTURES    every exported line equals (as parsed JSON) an event of the
                                      fixtures, found by a tolerant scanner that shares no code
                                      with trawl
  verify.py shape FILE                the rows and columns of one Parquet file (query output)
"""
import glob
import gzip
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def live_files(store_dir):
    """The live files and their Delta statistics, replaying the log's add/remove actions."""
    live = {}
    for path in sorted(glob.glob(os.path.join(store_dir, "_delta_log", "*.json"))):
        with open(path) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    live[action["add"]["path"]] = json.loads(action["add"]["stats"])
                elif "remove" in action:
                    live.pop(action["remove"]["path"], None)
    return {os.path.join(store_dir, p): stats for p, stats in live.items()}


STATS_COLUMNS = ["eventtime", "eventsource", "eventname", "awsregion", "errorcode", "recipientaccountid"]


def check_stats(path, table, stats):
    """Delta statistics as the protocol has them: times in UTC to the millisecond."""
    assert stats["numRecords"] == table.num_rows, (path, stats["numRecords"], table.num_rows)
    for name in STATS_COLUMNS:
        values = [v for v in table.column(name).to_pylist() if v is not None]
        assert stats["nullCount"][name] == table.num_rows - len(values), (path, name, stats["nullCount"])
        if not values:
            assert name not in stats["minValues"] and name not in stats["maxValues"], (path, name)
            continue
        lo, hi = min(values), max(values)
        if name == "eventtime":
            fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}" if t.microsecond // 1000 else "") + "Z"
            lo, hi = fmt(lo), fmt(hi)
        assert stats["minValues"][name] == lo, (path, name, stats["minValues"][name], lo)
        assert stats["maxValues"][name] == hi, (path, name, stats["maxValues"][name], hi)


def check_parquet(store_dir, rows):
    files = live_files(store_dir)
    assert files, "no live files"
    total = 0
    for path, stats in files.items():
        table = pq.read_table(path)
        total += table.num_rows
        check_stats(path, table, stats)
        t = table.schema.field("eventtime").type
        assert pa.types.is_timestamp(t) and t.unit == "us" and t.tz == "UTC", t
        ui = table.schema.field("useridentity").type
        assert pa.types.is_struct(ui), ui
        sc = ui.field("sessioncontext").type
        assert pa.types.is_timestamp(sc.field("attributes").type.field("creationdate").type)
        assert pa.types.is_map(table.schema.field("requestparameters").type)
        assert pa.types.is_list(table.schema.field("resources").type)
        times = table.column("eventtime").to_pylist()
        assert times == sorted(times), f"{path} is not sorted by eventtime"
        meta = pq.ParquetFile(path).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD", meta.row_group(0).column(0).compression
        # A nested value survives: the issuer ARN of assumed-role sessions.
        for row in table.select(["useridentity", "eventjson"]).to_pylist():
            ev = json.loads(row["eventjson"])
            issuer = (((ev.get("userIdentity") or {}).get("sessionContext") or {}).get("sessionIssuer") or {})
            if isinstance(issuer, dict) and isinstance(issuer.get("arn"), str):
                got = row["useridentity"]["sessioncontext"]["sessionissuer"]["arn"]
                assert got == issuer["arn"], (got, issuer["arn"])
    assert total == rows, f"pyarrow read {total} rows, expected {rows}"
    print(f"pyarrow: {len(files)} files, {total} rows: ok")


EVENT_KEYS = ("eventTime", "eventVersion", "eventName", "eventSource", "eventID", "@timestamp")


def events_in(value, out):
    if isinstance(value, dict):
        if any(k in value for k in EVENT_KEYS) and "Records" not in value and "CloudTrailEvent" not in value:
            out.append(value)
            return
        for k, v in value.items():
            if k in ("CloudTrailEvent", "message") and isinstance(v, str):
                try:
                    events_in(json.loads(v), out)
                except ValueError:
                    pass
            else:
                events_in(v, out)
    elif isinstance(value, list):
        for v in value:
            events_in(v, out)


def scan(text):
    """Every JSON value that decodes at some '{' (a tolerant scanner for malformed files)."""
    decoder = json.JSONDecoder()
    out, i = [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        try:
            value, end = decoder.raw_decode(text, i)
            events_in(value, out)
            i = end
        except ValueError:
            i += 1


def fixture_events(root):
    found = []
    for path in glob.glob(os.path.join(root, "**", "*"), recursive=True):
        if not os.path.isfile(path) or path.endswith(".md"):
            continue
        data = open(path, "rb").read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        found.extend(scan(data.decode("utf-8")))
    return found


def canonical(v):
    return json.dumps(v, sort_keys=True)


def check_export(export, root):
    expected = {canonical(e) for e in fixture_events(root)}
    n = 0
    with open(export) as f:
        for line in f:
            event = json.loads(line)
            assert canonical(event) in expected, f"exported event not in the input: {line[:200]}"
            n += 1
    assert n > 0, "empty export"
    print(f"export: {n} events, each equal to an input event: ok")


def shape(path):
    """Rows and columns of one Parquet file, read by pyarrow."""
    table = pq.read_table(path)
    print(table.num_rows, table.num_columns)


if __name__ == "__main__":
    if sys.argv[1] == "shape":
        shape(sys.argv[2])
    elif sys.argv[1] == "parquet":
        check_parquet(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "export":
        check_export(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
