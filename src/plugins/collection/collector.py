#!/usr/bin/env python3
"""Orbit collection task: collects data under artifacts/: a CSV table, or JSONL shards of LM rollouts.

Run from the bundle root:  python3 scripts/collector.py --config inputs/config.json
The config (written by the collection plugin) holds: output (a path under artifacts/) and source:
  {kind: "synthetic", rows, features, seed, noise}  rows of x1..xF uniform in [-2, 2] and
      y = sum(w_i * x_i) + sin(x1) + noise * N(0, 1), with weights w_i drawn from the seed;
  {kind: "file", path, limit}  copies a CSV table, dropping rows that are not all numbers with the
      header's cell count, keeping at most `limit` rows when set;
  {kind: "rollouts", checkpoint, prompts, samplesPerPrompt, maxNewChars, temperature, seed, shardSize}
      samples continuations of every prompt (a line of the prompts file; blank lines are skipped) from
      a char-lm checkpoint (scripts/charlm.py), written to output/ (a folder) as shard-00000.jsonl, ...:
      shardSize records each (the last may hold fewer), one JSON object per line: {id, prompt,
      promptIndex, sample, completion, checkpointStep, temperature}. Record i's text depends only on
      (seed, its prompt): a relaunch in the same folder keeps the shards already there.
The CSV is written atomically; artifacts/collection.json tells what was written: {output, rows, columns,
dropped} for a table; {output, kind, records, shards: [{path, records, bytes}], bytes, ...} for rollouts.
The table sources need the standard library only; rollouts need torch.
"""
import csv
import json
import math
import os
import random
import shutil
import sys
import time
import warnings

sys.dont_write_bytecode = True  # keep scripts/ (covered by the bundle digest) free of __pycache__
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

from tabular import run_task, TaskError, write_json_atomic  # noqa: E402

ARTIFACTS = os.environ.get("ORBIT_ARTIFACTS_DIR", "artifacts")
BUNDLE = os.environ.get("ORBIT_BUNDLE_DIR", ".")
# Where a shard is written before it is complete. Not under artifacts/: the monitor's sync copies every
# file under artifacts/ as it finds it (src/hosts/host/listing.ts skips only names ending in
# .orbit-part, Orbit's own transfer suffix), and the manifest written at the job's end hashes every file
# there; a half-written shard left by a kill (SIGKILL cannot be caught) would be synced, collected and
# listed as if it were data. This folder beside the bundle's parts is never synced, never collected and
# in no manifest, and it is on the same file system as artifacts/, so the rename that publishes a
# complete shard under its final name is atomic: a shard-N.jsonl is whole or absent, never half.
PARTIAL_DIR = os.path.join(BUNDLE, ".orbit-partial")


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


def read_prompts(path):
    """The prompts file's lines (without their line ends), blank lines skipped."""
    import charlm

    prompts = [line.rstrip("\r") for line in charlm.read_text(path).split("\n")]
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise TaskError(f"{path}: holds no prompt (one prompt per line; blank lines are skipped)")
    return prompts


def rollouts(config, started):
    import torch
    import charlm

    source = config["source"]
    torch.set_num_threads(int(config.get("threads", 1)))
    model, meta = charlm.load_model(source["checkpoint"])
    print(f"checkpoint {source['checkpoint']}: {charlm.meta_summary(meta)}", flush=True)
    prompts = read_prompts(source["prompts"])
    per, size, seed = source["samplesPerPrompt"], source["shardSize"], source["seed"]
    total = len(prompts) * per
    count = (total + size - 1) // size
    out_dir = os.path.join(ARTIFACTS, config["output"])
    partial_dir = os.path.join(PARTIAL_DIR, config["output"])
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(partial_dir, exist_ok=True)
    print(f"{len(prompts)} prompts x {per} samples = {total} rollouts of {source['maxNewChars']} characters "
          f"(temperature {source['temperature']}), {size} per shard: {count} shards in {out_dir}", flush=True)

    generated = {}  # the prompt last sampled: its samples' completions

    def record(i):
        p, k = divmod(i, per)
        if p not in generated:
            generated.clear()
            ids, _ = charlm.encode(prompts[p], meta["vocab"])
            generator = torch.Generator().manual_seed(seed * 1_000_003 + p)
            generated[p] = [charlm.decode(c, meta["vocab"]) for c in charlm.sample(model, ids, per, source["maxNewChars"], source["temperature"], generator)]
        return {"id": i, "prompt": prompts[p], "promptIndex": p, "sample": k, "completion": generated[p][k],
                "checkpointStep": meta["step"], "temperature": source["temperature"]}

    shards, kept = [], 0
    for n in range(count):
        name = f"shard-{n:05d}.jsonl"
        final = os.path.join(out_dir, name)
        first, last = n * size, min((n + 1) * size, total)
        if os.path.isfile(final):  # complete by construction: only a rename puts a file under this name
            kept += 1
            shards.append({"path": f"{config['output']}/{name}", "records": last - first, "bytes": os.path.getsize(final)})
            print(f"{name}: already there (an earlier attempt wrote it): kept", flush=True)
            continue
        partial = os.path.join(partial_dir, f".{name}.partial")
        with open(partial, "w", encoding="utf-8") as f:
            for i in range(first, last):
                f.write(json.dumps(record(i), ensure_ascii=False) + "\n")
                f.flush()
            os.fsync(f.fileno())
        os.replace(partial, final)
        shards.append({"path": f"{config['output']}/{name}", "records": last - first, "bytes": os.path.getsize(final)})
        print(f"{name}: {last - first} rollouts, {shards[-1]['bytes']} bytes ({last}/{total})", flush=True)
    shutil.rmtree(PARTIAL_DIR, ignore_errors=True)
    stats = {
        "output": config["output"], "kind": "rollouts", "records": total, "shards": shards, "bytes": sum(s["bytes"] for s in shards),
        "keptShards": kept, "prompts": len(prompts), "samplesPerPrompt": per, "maxNewChars": source["maxNewChars"],
        "temperature": source["temperature"], "checkpointStep": meta["step"], "seconds": round(time.time() - started, 3),
    }
    write_json_atomic(os.path.join(ARTIFACTS, "collection.json"), stats)
    print(f"done: wrote {total} rollouts in {len(shards)} shards ({stats['bytes']} bytes) to {out_dir}", flush=True)


def collect(config):
    started = time.time()
    source = config["source"]
    if source["kind"] == "rollouts":
        return rollouts(config, started)
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
