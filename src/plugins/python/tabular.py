"""Helpers shared by Orbit's task scripts; copied into a bundle as scripts/tabular.py.

Table format: CSV, UTF-8, a header row naming every column, then one row per example with a number
in every cell; the last column is the target, the others are features.

Checkpoint format (a folder written by trainer.py): model.pt (the model's state_dict), optimizer.pt,
meta.json (kind, step, architecture; an mlp's feature normalisation, a char-lm's vocabulary: see
charlm.py), logging.jsonl (one line per step so far) and COMPLETE, written last: a folder without
COMPLETE is partial and must not be used. meta.json without `kind` is an mlp's (older checkpoints).
torch is imported lazily so that torch-free scripts (collector.py) can use the table helpers.
"""
import csv
import json
import math
import os

COMPLETE = "COMPLETE"


class TaskError(Exception):
    """A problem with the job's inputs; the script prints it and exits with code 2."""


def read_table(path):
    """Returns (header, rows), rows as lists of floats. Raises TaskError naming the bad line."""
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise TaskError(f"{path}: cannot be read ({e.strerror})")
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or len(header) < 2:
            raise TaskError(f"{path}: needs a header row with at least 2 columns (features, then the target)")
        rows = []
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise TaskError(f"{path} line {line}: {len(row)} cells, but the header has {len(header)}")
            try:
                values = [float(cell) for cell in row]
            except ValueError:
                raise TaskError(f"{path} line {line}: every cell must be a number")
            if not all(math.isfinite(v) for v in values):
                raise TaskError(f"{path} line {line}: every cell must be a finite number")
            rows.append(values)
    if not rows:
        raise TaskError(f"{path}: has a header but no data rows")
    return header, rows


def write_json_atomic(path, value):
    """Writes JSON to path via a temporary file, so readers see the old or the new file, never half."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def build_mlp(inputs, hidden_size, layers):
    """A regression MLP: `layers` hidden layers of `hidden_size` units with tanh, one output."""
    from torch import nn

    modules = []
    width = inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden_size), nn.Tanh()]
        width = hidden_size
    modules.append(nn.Linear(width, 1))
    return nn.Sequential(*modules)


def read_checkpoint_meta(folder):
    """meta.json of a complete checkpoint folder; raises TaskError if the folder is partial or unreadable."""
    if not os.path.isfile(os.path.join(folder, COMPLETE)):
        raise TaskError(f"{folder}: not a complete checkpoint (no {COMPLETE} marker)")
    try:
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise TaskError(f"{folder}/meta.json: cannot be read ({e})")


def load_model(folder):
    """Rebuilds the MLP of a complete checkpoint folder. Returns (model, meta)."""
    import torch

    meta = read_checkpoint_meta(folder)
    model = build_mlp(meta["inputs"], meta["hiddenSize"], meta["layers"])
    weights = os.path.join(folder, "model.pt")
    if os.path.exists(weights):
        model.load_state_dict(torch.load(weights, weights_only=True))
    else:
        # model.json: the same state_dict as text ({name: nested lists}), as the shipped example checkpoints are.
        with open(os.path.join(folder, "model.json"), encoding="utf-8") as f:
            model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in json.load(f).items()})
    return model, meta


def features_tensor(rows, mean, std):
    """Standardised feature tensor (the checkpoint's normalisation) and target tensor of table rows."""
    import torch

    data = torch.tensor(rows, dtype=torch.float32)
    x = (data[:, :-1] - torch.tensor(mean)) / torch.tensor(std)
    return x, data[:, -1]


def run_task(name, work, doc):
    """The command line every task script shares: `--config FILE` (JSON, relative to the bundle root)
    is loaded and handed to `work`; a TaskError is printed as `<name>: error: ...` with exit code 2."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=(doc or name).splitlines()[0])
    parser.add_argument("--config", required=True, help="path of the JSON config, relative to the bundle root")
    args = parser.parse_args()
    try:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
        work(config)
    except TaskError as e:
        print(f"{name}: error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
