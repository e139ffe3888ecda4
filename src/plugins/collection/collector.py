#!/usr/bin/env python3
"""Orbit collection task: writes a CSV table under artifacts/, from a generator or a local file.

Run from the bundle root:  python3 scripts/collector.py --config inputs/config.json
The config (written by the collection plugin) holds: output (a path under artifacts/) and source:
  {kind: "synthetic", rows, features, seed, noise}  rows of x1..xF uniform in [-2, 2] and
      y = sum(w_i * x_i) + sin(x1) + noise * N(0, 1), with weights w_i drawn from the seed;
  {kind: "file", path, limit}  copies a CSV table, dropping rows that are not all numbers with the
      header's cell count, keeping at most `limit` rows when set.
Writes the output CSV (atomically) and artifacts/collection.json: {output, rows, columns, dropped}.
No torch needed: the standard library only.
"""
import csv
import json
import math
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/ (covered by the bundle digest) free of __pycache__

from tabular import run_task, TaskError, write_json_atomic  # noqa: E402

ARTIFACTS = os.environ.get("ORBIT_ARTIFACTS_DIR", "artifacts")


def synthetic(source):
    rng = random.Random(source["seed"])
    features = source["features"]
    weights = [rng.uniform(-2, 2) for _ in range(features)]
    header = [f"x{i + 1}" for i in range(features)] + ["y"]
    rows = []
    for _ in range(source["rows"]):
        x = [rng.uniform(-2, 2) for _ in range(features)]
        y = sum(w * v for w, v in zip(weights, x)) + math.sin(x[0]) + source["noise"] * rng.gauss(0, 1)
        rows.append([round(v, 6) for v in x + [y]])
    print(f"synthetic: {features} features, weights {[round(w, 3) for w in weights]}, noise {source['noise']}", flush=True)
    return header, rows, 0


def from_file(source):
    limit = source.get("limit")
    try:
        f = open(source["path"], newline="", encoding="utf-8")
    except OSError as e:
        raise TaskError(f"{source['path']}: cannot be read ({e.strerror})")
    rows, dropped = [], 0
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise TaskError(f"{source['path']}: has no header row")
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                values = [float(cell) for cell in row]
            except ValueError:
                values = None
            if values is None or len(values) != len(header) or not all(math.isfinite(v) for v in values):
                dropped += 1
                print(f"dropped line {reader.line_num}: not {len(header)} numbers", flush=True)
                continue
            if limit is None or len(rows) < limit:
                rows.append(row)
    print(f"file {source['path']}: kept {len(rows)} rows, dropped {dropped}", flush=True)
    return header, rows, dropped


def collect(config):
    started = time.time()
    source = config["source"]
    header, rows, dropped = synthetic(source) if source["kind"] == "synthetic" else from_file(source)
    output = os.path.join(ARTIFACTS, config["output"])
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(output + ".tmp", output)
    stats = {"output": config["output"], "rows": len(rows), "columns": len(header), "dropped": dropped, "seconds": round(time.time() - started, 3)}
    write_json_atomic(os.path.join(ARTIFACTS, "collection.json"), stats)
    print(f"done: wrote {len(rows)} rows x {len(header)} columns to {output}", flush=True)


if __name__ == "__main__":
    run_task("collector", collect, __doc__)
