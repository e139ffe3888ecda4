#!/usr/bin/env python3
"""Orbit evaluation task: scores a trainer checkpoint on one or more CSV tables ("environments").

Run from the bundle root:  python3 scripts/evaluator.py --config inputs/config.json
The config (written by the evaluation plugin) holds: checkpoint (a complete checkpoint folder),
environments [{name, data}], threads. Paths are relative to the bundle.

Writes artifacts/scores.json: {checkpoint: {path, step}, environments: {name: {mse, mae, rows}},
meanMse}. Progress goes to stdout (the entrypoint's log file).
"""
import json
import os
import sys
import time
import warnings

sys.dont_write_bytecode = True  # keep scripts/ (covered by the bundle digest) free of __pycache__
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from tabular import features_tensor, load_model, read_table, run_task, TaskError, write_json_atomic  # noqa: E402

ARTIFACTS = os.environ.get("ORBIT_ARTIFACTS_DIR", "artifacts")


def evaluate(config):
    started = time.time()
    torch.set_num_threads(int(config.get("threads", 1)))
    print(f"torch {torch.__version__} from {os.path.dirname(torch.__file__)}; python {sys.version.split()[0]}", flush=True)
    model, meta = load_model(config["checkpoint"])
    model.eval()
    print(f"checkpoint {config['checkpoint']}: step {meta['step']}, {meta['inputs']} inputs, {meta['hiddenSize']}x{meta['layers']} tanh", flush=True)
    scores = {}
    for env in config["environments"]:
        header, rows = read_table(env["data"])
        if len(header) - 1 != meta["inputs"]:
            raise TaskError(f"environment {env['name']}: {env['data']} has {len(header) - 1} feature columns, the checkpoint expects {meta['inputs']}")
        x, y = features_tensor(rows, meta["featureMean"], meta["featureStd"])
        with torch.no_grad():
            error = model(x).squeeze(-1) - y
        scores[env["name"]] = {"mse": error.pow(2).mean().item(), "mae": error.abs().mean().item(), "rows": len(rows)}
        print(f"environment {env['name']}: {len(rows)} rows, mse {scores[env['name']]['mse']:.5f}, mae {scores[env['name']]['mae']:.5f}", flush=True)
    result = {
        "checkpoint": {"path": config["checkpoint"], "step": meta["step"]},
        "environments": scores,
        "meanMse": sum(s["mse"] for s in scores.values()) / len(scores),
        "seconds": round(time.time() - started, 3),
    }
    write_json_atomic(os.path.join(ARTIFACTS, "scores.json"), result)
    print(f"done: {len(scores)} environments, mean mse {result['meanMse']:.5f}", flush=True)


if __name__ == "__main__":
    run_task("evaluator", evaluate, __doc__)
