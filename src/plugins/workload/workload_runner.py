#!/usr/bin/env python3
"""Orbit workload runner: runs the user's own code (a staged workdir, a setup and a run command).

Run from the bundle root:  python3 scripts/workload_runner.py --config inputs/config.json
The config (written by the training or evaluation plugin) holds: workdir (bundle folder of the
staged copy), setup and run (each {"shell": "..."} run with bash -c, or {"argv": [...]}; setup may
be null), paths ({NAME: bundle-relative path}: exported as absolute paths, e.g. ORBIT_DATASET_TRAIN)
and values ({NAME: value}: exported as they are, e.g. ORBIT_ENVIRONMENTS).

1. Copies the staged workdir to .orbit-work/ beside the bundle's parts (never synced or collected):
   the frozen inputs/ stay untouched, whatever the code writes in its working folder.
2. Exports ORBIT_WORKDIR (that copy, the commands' working folder), the paths and values, and makes
   relative PYTHONPATH entries (staged forks) absolute.
3. Runs setup, then run, in the copy; stdout and stderr go to the task log. TERM and INT are passed
   on to the running command. A failed setup ends the job with its exit code; run is not started.
4. Writes artifacts/workload.json after each phase: the commands, exit codes and durations.
Exits with run's exit code (128 + N when it died of signal N).
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True

RECORD = "workload.json"
SCHEMA_VERSION = "orbit.workload_run.v1"
child = None
stopping = False


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def say(msg):
    print(f"[orbit] {msg}", flush=True)


def argv_of(command):
    return ["bash", "-c", command["shell"]] if "shell" in command else list(command["argv"])


def text_of(command):
    return command["shell"] if "shell" in command else " ".join(command["argv"])


def write_record(artifacts, record):
    path = os.path.join(artifacts, RECORD)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def forward(signum, _frame):
    global stopping
    stopping = True
    if child is not None and child.poll() is None:
        child.send_signal(signum)


def run_phase(name, command, work, env, record, artifacts):
    """Runs one command in the work copy; returns its exit code (128 + N for signal N)."""
    global child
    if stopping:
        say(f"{name}: not started: stop requested")
        return 143
    phase = {"command": text_of(command), "startedAt": now()}
    record[name] = phase
    write_record(artifacts, record)
    say(f"{name}: {phase['command']}")
    t0 = time.monotonic()
    try:
        child = subprocess.Popen(argv_of(command), cwd=work, env=env, stdin=subprocess.DEVNULL)
        if stopping:  # a TERM that came while it was starting
            child.terminate()
        code = child.wait()
    except OSError as e:
        say(f"{name}: could not start {argv_of(command)[0]!r}: {e.strerror or e}")
        code = 127 if isinstance(e, FileNotFoundError) else 126
    finally:
        child = None
    phase["endedAt"] = now()
    phase["seconds"] = round(time.monotonic() - t0, 3)
    if code < 0:
        phase["signal"] = signal.Signals(-code).name
        code = 128 - code
    phase["exitCode"] = code
    write_record(artifacts, record)
    say(f"{name}: exit code {code} after {phase['seconds']} s")
    return code


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)
    bundle = os.getcwd()
    artifacts = os.environ.get("ORBIT_ARTIFACTS_DIR", os.path.join(bundle, "artifacts"))
    os.makedirs(artifacts, exist_ok=True)
    record = {"schemaVersion": SCHEMA_VERSION, "host": os.uname().nodename, "workdir": config["workdir"]}

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    work = os.path.join(bundle, ".orbit-work")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(os.path.join(bundle, config["workdir"]), work, symlinks=True)
    files = sum(len(names) for _d, _s, names in os.walk(work))
    record["files"] = files
    say(f"workdir: {files} files copied from {config['workdir']} to {work}")

    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(p if not p or os.path.isabs(p) else os.path.join(bundle, p) for p in env["PYTHONPATH"].split(os.pathsep))
    env["ORBIT_WORKDIR"] = work
    for name, rel in config.get("paths", {}).items():
        env[name] = os.path.join(bundle, rel)
    env.update(config.get("values", {}))

    code = 0
    try:
        if config.get("setup"):
            code = run_phase("setup", config["setup"], work, env, record, artifacts)
            if code != 0:
                say(f"setup failed with exit code {code}: the run command is not started")
                record["failedPhase"] = "setup"
                write_record(artifacts, record)
                return code
        code = run_phase("run", config["run"], work, env, record, artifacts)
        if code != 0:
            record["failedPhase"] = "run"
            write_record(artifacts, record)
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
