#!/usr/bin/env python3
"""Orbit training task: fits a small MLP regressor to a CSV table with PyTorch on CPU.

Run from the bundle root:  python3 scripts/trainer.py --config inputs/config.json
The config (written by the training plugin) holds: dataset, outputDir, model {hiddenSize, layers},
steps, batchSize, learningRate, checkpointEvery, seed, threads. Paths are relative to the bundle.

Writes, under artifacts/:
  <outputDir>/step-N/  every checkpointEvery steps and at the last step: model.pt (state_dict),
                       optimizer.pt, meta.json, logging.jsonl (one line per step up to N:
                       step, loss, lr, time) and COMPLETE, written last.
  metrics.json         at the end: first and final loss, steps, checkpoints.
Progress goes to stdout (the entrypoint's log file).

If ORBIT_RESUME_FROM names a complete checkpoint folder (absolute, or relative to the bundle), the
model and optimizer continue from its step to the same final step. Batches and the learning rate
depend only on (seed, step), so a resumed run takes the steps an uninterrupted one would.
"""
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings

sys.dont_write_bytecode = True  # keep scripts/ (covered by the bundle digest) free of __pycache__
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from tabular import COMPLETE, build_mlp, features_tensor, read_checkpoint_meta, read_table, run_task, TaskError, write_json_atomic  # noqa: E402

ARTIFACTS = os.environ.get("ORBIT_ARTIFACTS_DIR", "artifacts")


def lr_at(step, base, steps):
    """Cosine decay from base to base/10 over the run; step counts from 1."""
    progress = (step - 1) / max(1, steps - 1)
    return base * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def save_checkpoint(folder, model, optimizer, meta, history):
    """Writes a checkpoint folder; COMPLETE goes last, so a folder without it is known to be partial."""
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    torch.save(model.state_dict(), os.path.join(folder, "model.pt"))
    torch.save({"optimizer": optimizer.state_dict()}, os.path.join(folder, "optimizer.pt"))
    with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(folder, "logging.jsonl"), "w", encoding="utf-8") as f:
        for entry in history:
            f.write(json.dumps(entry) + "\n")
    with open(os.path.join(folder, COMPLETE), "w", encoding="utf-8") as f:
        f.write(f"step {meta['step']}\n")


def complete_checkpoints(out_dir):
    """Relative paths (under artifacts/) of complete step-N folders, by step."""
    found = []
    if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
            if name.startswith("step-") and name[5:].isdigit() and os.path.isfile(os.path.join(out_dir, name, COMPLETE)):
                found.append((int(name[5:]), os.path.relpath(os.path.join(out_dir, name), ARTIFACTS).replace(os.sep, "/")))
    return [rel for _, rel in sorted(found)]


def train(config):
    started = time.time()
    threads = int(config.get("threads", 1))
    torch.set_num_threads(threads)
    steps, batch_size, seed = config["steps"], config["batchSize"], config["seed"]
    hidden, layers = config["model"]["hiddenSize"], config["model"]["layers"]
    out_dir = os.path.join(ARTIFACTS, config["outputDir"])
    print(f"torch {torch.__version__} from {os.path.dirname(torch.__file__)}; python {sys.version.split()[0]}; threads {threads}", flush=True)

    header, rows = read_table(config["dataset"])
    inputs = len(header) - 1
    data = torch.tensor(rows, dtype=torch.float32)
    mean = data[:, :-1].mean(dim=0).tolist()
    std = [s if s > 1e-8 else 1.0 for s in data[:, :-1].std(dim=0).tolist()]
    print(f"dataset {config['dataset']}: {len(rows)} rows, features {header[:-1]}, target {header[-1]}", flush=True)

    torch.manual_seed(seed)
    model = build_mlp(inputs, hidden, layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learningRate"])
    start, history, time_offset = 0, [], 0.0

    resume = os.environ.get("ORBIT_RESUME_FROM", "").strip()
    if resume:
        meta = read_checkpoint_meta(resume)
        if (meta["inputs"], meta["hiddenSize"], meta["layers"]) != (inputs, hidden, layers):
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint model ({meta['inputs']} inputs, {meta['hiddenSize']}x{meta['layers']}) does not match this job's ({inputs} inputs, {hidden}x{layers})")
        if meta["step"] > steps:
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint is at step {meta['step']}, past this job's {steps} steps")
        model.load_state_dict(torch.load(os.path.join(resume, "model.pt"), weights_only=True))
        optimizer.load_state_dict(torch.load(os.path.join(resume, "optimizer.pt"), weights_only=True)["optimizer"])
        start, mean, std = meta["step"], meta["featureMean"], meta["featureStd"]
        history = [e for e in read_log(os.path.join(resume, "logging.jsonl")) if e["step"] <= start]
        time_offset = history[-1]["time"] if history else 0.0
        print(f"resuming from {resume} at step {start} of {steps}", flush=True)

    x, y = features_tensor(rows, mean, std)
    meta = {
        "inputs": inputs, "hiddenSize": hidden, "layers": layers, "activation": "tanh",
        "features": header[:-1], "target": header[-1], "featureMean": mean, "featureStd": std,
        "seed": seed, "steps": steps, "datasetSha256": sha256(config["dataset"]),
    }
    loss_fn = torch.nn.MSELoss()
    every = config["checkpointEvery"]
    report_every = max(1, steps // 20)
    run_started = time.time()
    # The live progress series (artifacts/logging.jsonl): one record per step, flushed a few times a
    # second, so the monitor's syncs bring the loss while the job runs (the health rules read it).
    live = open(os.path.join(ARTIFACTS, "logging.jsonl"), "w", encoding="utf-8")
    for entry in history:
        live.write(json.dumps(entry) + "\n")
    live.flush()
    flushed = time.time()
    pace = float(config.get("secondsPerStep") or 0)
    for step in range(start + 1, steps + 1):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        batch = torch.randint(0, len(rows), (batch_size,), generator=generator)
        lr = lr_at(step, config["learningRate"], steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(x[batch]).squeeze(-1), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        elapsed = round(time_offset + time.time() - run_started, 4)
        history.append({"step": step, "loss": loss.item(), "lr": lr, "time": elapsed})
        live.write(json.dumps(history[-1]) + "\n")
        if time.time() - flushed >= 0.2:
            live.flush()
            flushed = time.time()
        if step % report_every == 0 or step == start + 1 or step == steps:
            print(f"step {step}/{steps} loss {loss.item():.5f} lr {lr:.5f}", flush=True)
        if step % every == 0 or step == steps:
            folder = os.path.join(out_dir, f"step-{step}")
            save_checkpoint(folder, model, optimizer, dict(meta, step=step), history)
            print(f"checkpoint {folder}", flush=True)
        if pace > 0:
            time.sleep(pace)
    live.close()
    final = os.path.join(out_dir, f"step-{steps}")
    if not os.path.isfile(os.path.join(final, COMPLETE)):  # resumed at the last step from another folder
        save_checkpoint(final, model, optimizer, dict(meta, step=steps), history)

    with torch.no_grad():
        full_loss = loss_fn(model(x).squeeze(-1), y).item()
    checkpoints = complete_checkpoints(out_dir)
    metrics = {
        "steps": steps,
        "startStep": start,
        "resumedFrom": resume or None,
        "firstLoss": history[0]["loss"] if history else None,
        "finalLoss": history[-1]["loss"] if history else None,
        "minLoss": min(e["loss"] for e in history) if history else None,
        "fullDataLoss": full_loss,
        "rows": len(rows),
        "features": inputs,
        "checkpoints": checkpoints,
        "finalCheckpoint": checkpoints[-1] if checkpoints else None,
        "seconds": round(time.time() - started, 3),
    }
    write_json_atomic(os.path.join(ARTIFACTS, "metrics.json"), metrics)
    print(f"done: {steps} steps, loss {metrics['firstLoss']:.5f} -> {metrics['finalLoss']:.5f}, full-data mse {full_loss:.5f}", flush=True)


if __name__ == "__main__":
    run_task("trainer", train, __doc__)
