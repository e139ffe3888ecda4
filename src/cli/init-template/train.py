#!/usr/bin/env python3
"""A starter Orbit job: fits y ~ w.x + b to data/train.csv by mini-batch SGD (standard library only).

By hand:      python3 train.py [--steps 200] [--lr 0.05] [--checkpoint-every 50]
Through Orbit: orbit submit orbit.yaml --follow   (orbit.yaml runs this script on a host)

It follows Orbit's job contract (docs/job-contract.md), read from the environment; with none of it
set (a run by hand) everything goes to out/ beside this script:
  ORBIT_OUTPUT_DIR        results; synced back while the job runs, collected at the end
                          (here: model.json, the final weights and loss)
  ORBIT_METRICS_FILE      one JSON line per step, {"step": N, "loss": x}, flushed as it goes
  ORBIT_CHECKPOINT_DIR    checkpoints, one folder per step-N: weights.json and metrics.jsonl (the
                          records so far), then the ORBIT_CHECKPOINT_MARKER file, last; the folder
                          is written under a temporary name and renamed, so a step-N folder is
                          always complete
  ORBIT_RESUME_FROM       a complete checkpoint folder to continue from (set when Orbit relaunches a
                          run whose host was lost); the metrics file is first rewritten from the
                          checkpoint's copy
  ORBIT_DATASET_TRAIN     the staged training table (orbit.yaml: datasets.train)
Batches depend only on (seed, step), so a resumed run ends with the same weights and loss as an
uninterrupted one. On SIGTERM (Orbit's cancel) the current step finishes, a checkpoint of it is
saved, and the script exits 143.

Orbit also puts a helper module, orbit_job, on the job's PYTHONPATH (output_dir, log_metrics,
checkpoint, resume_from: this contract, written for you); this script does without it, so it runs
anywhere as it is.
"""
import argparse
import csv
import json
import os
import random
import shutil
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def env(name, default):
    """An environment variable, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200, help="SGD steps (default 200)")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
    p.add_argument("--batch-size", type=int, default=16, help="rows per step (default 16)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints, and one at the end (default 50)")
    p.add_argument("--seed", type=int, default=0, help="picks the batches (default 0)")
    p.add_argument("--data", default=env("ORBIT_DATASET_TRAIN", os.path.join(HERE, "data", "train.csv")),
                   help="CSV with a header row, numbers only, the target in the last column")
    args = p.parse_args()
    if args.steps < 1 or args.batch_size < 1 or args.checkpoint_every < 1:
        p.error("--steps, --batch-size and --checkpoint-every must be 1 or more")
    return args


def read_table(path):
    """(rows of features, targets) from a CSV whose last column is the target."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)  # header
        rows = [[float(v) for v in row] for row in reader if row]
    if not rows:
        sys.exit(f"train.py: {path} has no rows")
    return [r[:-1] for r in rows], [r[-1] for r in rows]


def predict(w, b, x):
    return sum(wi * xi for wi, xi in zip(w, x)) + b


def mse(w, b, xs, ys):
    return sum((predict(w, b, x) - y) ** 2 for x, y in zip(xs, ys)) / len(ys)


def batch(seed, step, n, size):
    """The rows of step `step`: the same for a given (seed, step), however the run got there."""
    return random.Random(seed * 1_000_003 + step).sample(range(n), min(size, n))


def write_file(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(checkpoint_dir, marker, step, w, b, loss, history):
    """checkpoint_dir/step-N, complete or not there: written as .tmp-step-N, marker last, then renamed."""
    final = os.path.join(checkpoint_dir, f"step-{step}")
    tmp = os.path.join(checkpoint_dir, f".tmp-step-{step}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    write_file(os.path.join(tmp, "weights.json"), json.dumps({"step": step, "w": w, "b": b, "loss": loss}) + "\n")
    write_file(os.path.join(tmp, "metrics.jsonl"), "".join(json.dumps(r) + "\n" for r in history))
    write_file(os.path.join(tmp, marker), f"step {step}\n")  # last: the folder is complete
    shutil.rmtree(final, ignore_errors=True)  # a stale copy of this step (left by an earlier launch)
    os.rename(tmp, final)


def load_checkpoint(folder, marker):
    if not os.path.isfile(os.path.join(folder, marker)):
        sys.exit(f"train.py: {folder} is not a complete checkpoint (no {marker} file)")
    with open(os.path.join(folder, "weights.json"), encoding="utf-8") as f:
        state = json.load(f)
    with open(os.path.join(folder, "metrics.jsonl"), encoding="utf-8") as f:
        history = [json.loads(line) for line in f if line.strip()]
    return state, [r for r in history if r["step"] <= state["step"]]


def main():
    args = parse_args()
    output_dir = env("ORBIT_OUTPUT_DIR", os.path.join(HERE, "out"))
    checkpoint_dir = env("ORBIT_CHECKPOINT_DIR", os.path.join(output_dir, "checkpoints"))
    marker = env("ORBIT_CHECKPOINT_MARKER", "COMPLETE")
    metrics_path = env("ORBIT_METRICS_FILE", os.path.join(output_dir, "metrics.jsonl"))
    resume_from = env("ORBIT_RESUME_FROM", "")
    for folder in (output_dir, checkpoint_dir):
        os.makedirs(folder, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(metrics_path)), exist_ok=True)

    xs, ys = read_table(args.data)
    w, b, start, history = [0.0] * len(xs[0]), 0.0, 0, []
    if resume_from:
        state, history = load_checkpoint(resume_from, marker)
        w, b, start = state["w"], state["b"], state["step"]
        print(f"resuming from {resume_from} (step {start})", flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

    # Fresh: an empty metrics file. Resumed: the records up to the checkpoint's step, then onwards.
    metrics = open(metrics_path, "w", encoding="utf-8")
    for record in history:
        metrics.write(json.dumps(record) + "\n")
    metrics.flush()

    step, saved = start, None
    loss = history[-1]["loss"] if history else mse(w, b, xs, ys)
    while step < args.steps and not stop:
        step += 1
        rows = batch(args.seed, step, len(ys), args.batch_size)
        errors = [(predict(w, b, xs[i]) - ys[i], i) for i in rows]
        # Gradient of the batch's mean squared error.
        for j in range(len(w)):
            w[j] -= args.lr * 2 * sum(e * xs[i][j] for e, i in errors) / len(rows)
        b -= args.lr * 2 * sum(e for e, _ in errors) / len(rows)
        loss = mse(w, b, xs, ys)  # over the whole table, after this step's update
        record = {"step": step, "loss": loss}
        history.append(record)
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        if step % 10 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} loss {loss:.6f}", flush=True)
        if step % args.checkpoint_every == 0 or step == args.steps:
            save_checkpoint(checkpoint_dir, marker, step, w, b, loss, history)
            saved = step
    metrics.close()

    if stop:
        if step > 0 and saved != step:
            save_checkpoint(checkpoint_dir, marker, step, w, b, loss, history)
        print(f"SIGTERM: stopped after step {step}" + (f", checkpoint step-{step} saved" if step > 0 else ""), flush=True)
        sys.exit(143)
    write_file(os.path.join(output_dir, "model.json"), json.dumps({"step": step, "w": w, "b": b, "loss": loss}, indent=1) + "\n")
    print(f"done: loss {loss:.6f}, w {[round(v, 4) for v in w]}, b {b:.4f}", flush=True)


if __name__ == "__main__":
    main()
