#!/usr/bin/env python3
"""Orbit training task: trains a small model with PyTorch on CPU, with resumable step-N checkpoints.

Run from the bundle root:  python3 scripts/trainer.py --config inputs/config.json
The config (written by the training plugin) holds: dataset, outputDir, model, steps, batchSize,
learningRate, checkpointEvery, seed, secondsPerStep, threads. Paths are relative to the bundle. Two
kinds of model (config model.kind):

  char-lm  a character-level causal transformer LM (scripts/charlm.py) on a UTF-8 text: model
           {contextLength, layers, heads, embedDim, dropout}. The text's last 5% is held out: the
           validation loss (valLoss, nats per character) is measured at every checkpoint.
  mlp      an MLP regressor on a CSV table (scripts/tabular.py): model {hiddenSize, layers}.

This script is the reference implementation of the job contract (docs/job-contract.md), which needs
nothing of Orbit:
  ORBIT_CHECKPOINT_DIR     the checkpoints' folder (else artifacts/<outputDir>): one step-N folder every
                           checkpointEvery steps and at the last step, holding model.pt (state_dict),
                           optimizer.pt, meta.json (kind, architecture, step, dataset sha256; a char-lm's
                           vocabulary), logging.jsonl (the series up to N) and the marker, written last.
  ORBIT_CHECKPOINT_MARKER  the marker's name (else COMPLETE).
  ORBIT_METRICS_FILE       the progress series (else artifacts/logging.jsonl): JSON lines {step, loss,
                           lr, time} (a char-lm adds valLoss at checkpoint steps), flushed a few times a
                           second so the monitor's syncs bring the loss while the job runs.
  ORBIT_RESUME_FROM        a complete checkpoint folder (absolute, or relative to the bundle): the model
                           and optimizer continue from its step to the same final step. Batches, the
                           learning rate and dropout depend only on (seed, step), so a resumed run takes
                           the steps an uninterrupted one would.
At the end, artifacts/metrics.json: first and final loss, steps, checkpoints. Progress goes to stdout
(the entrypoint's log file).
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
#: The share of a char-lm's text, at its end, held out for the validation loss.
VALIDATION_SHARE = 0.05


def env_path(name, default):
    value = os.environ.get(name, "").strip()
    return value or default


def cosine(step, base, steps, warmup=0):
    """Linear warm-up over `warmup` steps, then cosine decay from base to base/10 at the last step; step counts from 1."""
    if step <= warmup:
        return base * step / warmup
    progress = (step - 1 - warmup) / max(1, steps - 1 - warmup)
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


def save_checkpoint(folder, marker, model, optimizer, meta, history):
    """Writes a checkpoint folder; the marker goes last, so a folder without it is known to be partial."""
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    torch.save(model.state_dict(), os.path.join(folder, "model.pt"))
    torch.save({"optimizer": optimizer.state_dict()}, os.path.join(folder, "optimizer.pt"))
    with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
    with open(os.path.join(folder, "logging.jsonl"), "w", encoding="utf-8") as f:
        for entry in history:
            f.write(json.dumps(entry) + "\n")
    with open(os.path.join(folder, marker), "w", encoding="utf-8") as f:
        f.write(f"step {meta['step']}\n")


def complete_checkpoints(out_dir, marker):
    """Paths (relative to artifacts/) of the complete step-N folders, by step."""
    found = []
    if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
            if name.startswith("step-") and name[5:].isdigit() and os.path.isfile(os.path.join(out_dir, name, marker)):
                found.append((int(name[5:]), os.path.relpath(os.path.join(out_dir, name), ARTIFACTS).replace(os.sep, "/")))
    return [rel for _, rel in sorted(found)]


class MlpKind:
    """An MLP regressor on a CSV table: MSE on a random batch of rows per step."""

    name = "mlp"

    def __init__(self, config):
        self.config = config
        self.hidden, self.layers = config["model"]["hiddenSize"], config["model"]["layers"]
        self.header, self.rows = read_table(config["dataset"])
        self.inputs = len(self.header) - 1
        data = torch.tensor(self.rows, dtype=torch.float32)
        self.mean = data[:, :-1].mean(dim=0).tolist()
        self.std = [s if s > 1e-8 else 1.0 for s in data[:, :-1].std(dim=0).tolist()]
        print(f"dataset {config['dataset']}: {len(self.rows)} rows, features {self.header[:-1]}, target {self.header[-1]}", flush=True)
        torch.manual_seed(config["seed"])
        self.model = build_mlp(self.inputs, self.hidden, self.layers)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config["learningRate"])
        self.loss_fn = torch.nn.MSELoss()

    def check_resume(self, resume, meta):
        if (meta["inputs"], meta["hiddenSize"], meta["layers"]) != (self.inputs, self.hidden, self.layers):
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint model ({meta['inputs']} inputs, {meta['hiddenSize']}x{meta['layers']}) does not match this job's ({self.inputs} inputs, {self.hidden}x{self.layers})")
        self.mean, self.std = meta["featureMean"], meta["featureStd"]

    def ready(self):
        self.x, self.y = features_tensor(self.rows, self.mean, self.std)

    def lr_at(self, step):
        return cosine(step, self.config["learningRate"], self.config["steps"])

    def loss_at(self, step):
        generator = torch.Generator().manual_seed(self.config["seed"] * 1_000_003 + step)
        batch = torch.randint(0, len(self.rows), (self.config["batchSize"],), generator=generator)
        return self.loss_fn(self.model(self.x[batch]).squeeze(-1), self.y[batch])

    def clip(self):
        pass

    def at_checkpoint(self):
        return {}

    def meta(self):
        return {
            "kind": self.name, "inputs": self.inputs, "hiddenSize": self.hidden, "layers": self.layers, "activation": "tanh",
            "features": self.header[:-1], "target": self.header[-1], "featureMean": self.mean, "featureStd": self.std,
        }

    def final(self):
        with torch.no_grad():
            full = self.loss_fn(self.model(self.x).squeeze(-1), self.y).item()
        return {"fullDataLoss": full, "rows": len(self.rows), "features": self.inputs}, f"full-data mse {full:.5f}"


class CharLmKind:
    """A character-level causal transformer LM: next-character cross-entropy on random windows of the text."""

    name = "char-lm"

    def __init__(self, config):
        import charlm

        self.charlm = charlm
        self.config = config
        model = config["model"]
        self.arch = {k: model[k] for k in charlm.ARCHITECTURE}
        self.context = self.arch["contextLength"]
        text = charlm.read_text(config["dataset"])
        self.vocab = charlm.build_vocab(text)
        ids, _ = charlm.encode(text, self.vocab)
        held = max(self.context + 1, int(len(ids) * VALIDATION_SHARE))
        if len(ids) - held < self.context + 1:
            raise TaskError(f"{config['dataset']}: {len(ids)} characters are too few for contextLength {self.context} (the last {held} are held out for validation)")
        self.train_ids = torch.tensor(ids[:-held], dtype=torch.long)
        self.val_ids = ids[-held:]
        self.unknown = len(self.vocab)
        torch.manual_seed(config["seed"])
        self.model = charlm.build_model(len(self.vocab) + 1, self.arch)
        self.arch["parameters"] = charlm.parameter_count(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config["learningRate"], betas=(0.9, 0.99), weight_decay=0.01)
        self.offsets = torch.arange(self.context + 1)
        self.warmup = min(50, max(1, config["steps"] // 10))
        self.last_val = None
        print(
            f"dataset {config['dataset']}: {len(ids)} characters, {len(self.vocab)} distinct; training on the first {len(self.train_ids)}, "
            f"validating on the last {held}; model: {self.arch['layers']} layers x {self.arch['embedDim']} dims, {self.arch['heads']} heads, "
            f"context {self.context}, {self.arch['parameters']} parameters",
            flush=True,
        )

    def check_resume(self, resume, meta):
        theirs = {k: meta.get("architecture", {}).get(k) for k in self.charlm.ARCHITECTURE}
        ours = {k: self.arch[k] for k in self.charlm.ARCHITECTURE}
        if theirs != ours:
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint architecture {theirs} does not match this job's {ours}")
        if meta.get("vocab") != self.vocab:
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint vocabulary ({len(meta.get('vocab') or [])} characters) is not this job's dataset's ({len(self.vocab)})")

    def ready(self):
        self.model.train()

    def lr_at(self, step):
        return cosine(step, self.config["learningRate"], self.config["steps"], self.warmup)

    def loss_at(self, step):
        seed = self.config["seed"] * 1_000_003 + step
        torch.manual_seed(seed)  # dropout's masks: a function of (seed, step) too
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(self.train_ids) - self.context, (self.config["batchSize"],), generator=generator)
        windows = self.train_ids[starts[:, None] + self.offsets]
        logits = self.model(windows[:, :-1])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))

    def clip(self):
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)

    def at_checkpoint(self):
        """The validation loss (nats per character) now; joins the checkpoint step's metrics record."""
        self.model.eval()
        s = self.charlm.score(self.model, self.val_ids, self.unknown, stride=self.context)
        self.model.train()
        self.last_val = s["nll"] / s["chars"] if s["chars"] else None
        return {"valLoss": self.last_val}

    def meta(self):
        return {
            "kind": self.name, "vocab": self.vocab, "unknownId": self.unknown, "vocabSize": len(self.vocab) + 1,
            "architecture": self.arch, "trainChars": len(self.train_ids), "valChars": len(self.val_ids), "valLoss": self.last_val,
        }

    def final(self):
        if self.last_val is None:  # resumed at the last step: no checkpoint was written by this process
            self.at_checkpoint()
        val = self.last_val
        return (
            {"valLoss": val, "parameters": self.arch["parameters"], "vocabSize": len(self.vocab) + 1, "trainChars": len(self.train_ids), "valChars": len(self.val_ids)},
            f"validation loss {val:.4f} (perplexity {math.exp(val):.2f})" if val is not None else "no validation loss",
        )


def train(config):
    started = time.time()
    threads = int(config.get("threads", 1))
    torch.set_num_threads(threads)
    steps, seed = config["steps"], config["seed"]
    kind_name = config["model"].get("kind", "mlp")
    out_dir = env_path("ORBIT_CHECKPOINT_DIR", os.path.join(ARTIFACTS, config["outputDir"]))
    marker = env_path("ORBIT_CHECKPOINT_MARKER", COMPLETE)
    metrics_file = env_path("ORBIT_METRICS_FILE", os.path.join(ARTIFACTS, "logging.jsonl"))
    print(f"torch {torch.__version__} from {os.path.dirname(torch.__file__)}; python {sys.version.split()[0]}; threads {threads}", flush=True)

    kind = CharLmKind(config) if kind_name == CharLmKind.name else MlpKind(config)
    model, optimizer = kind.model, kind.optimizer
    start, history, time_offset = 0, [], 0.0

    resume = os.environ.get("ORBIT_RESUME_FROM", "").strip()
    if resume:
        meta = read_checkpoint_meta(resume)
        if meta.get("kind", "mlp") != kind.name:
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint is a {meta.get('kind', 'mlp')} model, this job trains a {kind.name}")
        kind.check_resume(resume, meta)
        if meta["step"] > steps:
            raise TaskError(f"ORBIT_RESUME_FROM={resume}: checkpoint is at step {meta['step']}, past this job's {steps} steps")
        model.load_state_dict(torch.load(os.path.join(resume, "model.pt"), weights_only=True))
        optimizer.load_state_dict(torch.load(os.path.join(resume, "optimizer.pt"), weights_only=True)["optimizer"])
        start = meta["step"]
        history = [e for e in read_log(os.path.join(resume, "logging.jsonl")) if e["step"] <= start]
        time_offset = history[-1]["time"] if history else 0.0
        print(f"resuming from {resume} at step {start} of {steps}", flush=True)
    kind.ready()

    base_meta = dict(kind.meta(), seed=seed, steps=steps, datasetSha256=sha256(config["dataset"]))
    every = config["checkpointEvery"]
    report_every = max(1, steps // 20)
    run_started = time.time()
    # The live progress series: one record per step, flushed a few times a second, so the monitor's
    # syncs bring the loss while the job runs (the health rules read it). A resumed run rewrites it
    # from the checkpoint's copy: no gap, no repeat.
    os.makedirs(os.path.dirname(metrics_file) or ".", exist_ok=True)
    live = open(metrics_file, "w", encoding="utf-8")
    for entry in history:
        live.write(json.dumps(entry) + "\n")
    live.flush()
    flushed = time.time()
    pace = float(config.get("secondsPerStep") or 0)
    for step in range(start + 1, steps + 1):
        lr = kind.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = kind.loss_at(step)
        optimizer.zero_grad()
        loss.backward()
        kind.clip()
        optimizer.step()
        elapsed = round(time_offset + time.time() - run_started, 4)
        checkpoint = step % every == 0 or step == steps
        history.append({"step": step, "loss": loss.item(), "lr": lr, "time": elapsed, **(kind.at_checkpoint() if checkpoint else {})})
        live.write(json.dumps(history[-1]) + "\n")
        if time.time() - flushed >= 0.2:
            live.flush()
            flushed = time.time()
        if step % report_every == 0 or step == start + 1 or step == steps:
            extra = f" val {history[-1]['valLoss']:.4f}" if history[-1].get("valLoss") is not None else ""
            print(f"step {step}/{steps} loss {loss.item():.5f} lr {lr:.5f}{extra}", flush=True)
        if checkpoint:
            folder = os.path.join(out_dir, f"step-{step}")
            save_checkpoint(folder, marker, model, optimizer, dict(base_meta, **kind.meta(), step=step), history)
            print(f"checkpoint {folder}", flush=True)
        if pace > 0:
            time.sleep(pace)
    live.close()
    final = os.path.join(out_dir, f"step-{steps}")
    if not os.path.isfile(os.path.join(final, marker)):  # resumed at the last step from another folder
        save_checkpoint(final, marker, model, optimizer, dict(base_meta, **kind.meta(), step=steps), history)

    extra, line = kind.final()
    checkpoints = complete_checkpoints(out_dir, marker)
    metrics = {
        "kind": kind.name,
        "steps": steps,
        "startStep": start,
        "resumedFrom": resume or None,
        "firstLoss": history[0]["loss"] if history else None,
        "finalLoss": history[-1]["loss"] if history else None,
        "minLoss": min(e["loss"] for e in history) if history else None,
        **extra,
        "checkpoints": checkpoints,
        "finalCheckpoint": checkpoints[-1] if checkpoints else None,
        "seconds": round(time.time() - started, 3),
    }
    write_json_atomic(os.path.join(ARTIFACTS, "metrics.json"), metrics)
    print(f"done: {steps} steps, loss {metrics['firstLoss']:.5f} -> {metrics['finalLoss']:.5f}, {line}", flush=True)


if __name__ == "__main__":
    run_task("trainer", train, __doc__)
