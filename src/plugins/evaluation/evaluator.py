#!/usr/bin/env python3
"""Orbit evaluation task: scores a trainer checkpoint on one or more "environments".

Run from the bundle root:  python3 scripts/evaluator.py --config inputs/config.json
The config (written by the evaluation plugin) holds: checkpoint (a complete checkpoint folder),
environments [{name, data}], threads. Paths are relative to the bundle. The checkpoint's meta.json
`kind` decides what an environment is and what is scored:

  char-lm  a UTF-8 text: perplexity (per character), accuracy (the most likely next character is the
           right one) and bitsPerChar over every character the model's vocabulary has, each with up to
           contextLength characters before it; characters outside the vocabulary are fed as the unknown
           id and not scored (oovChars counts them). scores.json: {checkpoint: {path, step, kind},
           environments: {name: {perplexity, accuracy, bitsPerChar, chars, oovChars}}, meanPerplexity}.
  mlp      a CSV table like the training one: {checkpoint, environments: {name: {mse, mae, rows}}, meanMse}.

Writes artifacts/scores.json. Progress goes to stdout (the entrypoint's log file).
"""
import json
import os
import sys
import time
import warnings

sys.dont_write_bytecode = True  # keep scripts/ (covered by the bundle digest) free of __pycache__
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from tabular import features_tensor, load_model, read_checkpoint_meta, read_table, run_task, TaskError, write_json_atomic  # noqa: E402

ARTIFACTS = os.environ.get("ORBIT_ARTIFACTS_DIR", "artifacts")


def score_mlp(config):
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
    mean = sum(s["mse"] for s in scores.values()) / len(scores)
    return meta, scores, {"meanMse": mean}, f"mean mse {mean:.5f}"


def score_char_lm(config):
    import charlm

    model, meta = charlm.load_model(config["checkpoint"])
    print(f"checkpoint {config['checkpoint']}: {charlm.meta_summary(meta)}", flush=True)
    scores = {}
    for env in config["environments"]:
        ids, _ = charlm.encode(charlm.read_text(env["data"]), meta["vocab"])
        if len(ids) < 2:
            raise TaskError(f"environment {env['name']}: {env['data']} has {len(ids)} characters; a text to score needs at least 2")
        s = charlm.summary_of(charlm.score(model, ids, meta["unknownId"]))
        if s["perplexity"] is None:
            raise TaskError(f"environment {env['name']}: {env['data']} has no character of the checkpoint's vocabulary to score")
        scores[env["name"]] = s
        print(
            f"environment {env['name']}: {s['chars']} characters scored ({s['oovChars']} outside the vocabulary), "
            f"perplexity {s['perplexity']:.3f}, accuracy {s['accuracy']:.3f}, {s['bitsPerChar']:.3f} bits per character",
            flush=True,
        )
    mean = sum(s["perplexity"] for s in scores.values()) / len(scores)
    return meta, scores, {"meanPerplexity": mean}, f"mean perplexity {mean:.3f}"


def evaluate(config):
    started = time.time()
    torch.set_num_threads(int(config.get("threads", 1)))
    print(f"torch {torch.__version__} from {os.path.dirname(torch.__file__)}; python {sys.version.split()[0]}", flush=True)
    kind = read_checkpoint_meta(config["checkpoint"]).get("kind", "mlp")
    meta, scores, means, line = score_char_lm(config) if kind == "char-lm" else score_mlp(config)
    result = {
        "checkpoint": {"path": config["checkpoint"], "step": meta["step"], "kind": kind},
        "environments": scores,
        **means,
        "seconds": round(time.time() - started, 3),
    }
    write_json_atomic(os.path.join(ARTIFACTS, "scores.json"), result)
    print(f"done: {len(scores)} environments, {line}", flush=True)


if __name__ == "__main__":
    run_task("evaluator", evaluate, __doc__)
