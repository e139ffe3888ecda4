#!/usr/bin/env python3
"""Orbit upstream black-box runner: runs an upstream repository's own entry point, unchanged.

Run from the bundle root:  python3 scripts/upstream_runner.py --config inputs/config.json
The config (written by the upstream plugin) holds: repository, commit, entry (argv), outputs (paths
inside the upstream tree), tree and treeManifest (bundle paths), artifactsSubdir, orbitArtifacts,
dirtyExitCode, schemaVersion.

1. Checks the staged tree against the commit's tree (inputs/upstream/UPSTREAM_TREE.json: path, mode,
   git blob id of every file): the host-side `git status --porcelain`. Any modified (" M"), missing
   (" D") or untracked ("??") file aborts the run with dirtyExitCode before anything runs.
2. Copies the tree to a scratch folder (the frozen inputs/ stay untouched) and runs the entry there,
   as is; its stdout and stderr go to the task log. TERM and INT are passed on to it.
3. Copies the declared outputs to artifacts/<artifactsSubdir>/ and writes artifacts/upstream_run.json:
   schema_version, upstream (repository, commit), entry, timings, exit status and the raw artifacts.
Exits with the entry's exit code (128 + N when it died of signal N).
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def say(msg):
    print(f"[orbit upstream] {msg}", flush=True)


def blob_id(path):
    """The git blob id of a file: sha1 of "blob <size>\\0" + content."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_status(tree, manifest):
    """Porcelain-style lines for every difference between the staged tree and the commit; empty when clean."""
    lines = []
    listed = set()
    for entry in manifest["files"]:
        rel = entry["path"]
        listed.add(rel)
        path = os.path.join(tree, rel)
        if not os.path.isfile(path) or os.path.islink(path):
            lines.append(f" D {rel}")
            continue
        if blob_id(path) != entry["oid"]:
            lines.append(f" M {rel}")
        elif (entry["mode"] == "100755") != bool(os.stat(path).st_mode & 0o111):
            lines.append(f" M {rel} (mode, expected {entry['mode']})")
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(filenames) + sorted(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))):
            rel = os.path.relpath(os.path.join(dirpath, name), tree).replace(os.sep, "/")
            if rel not in listed:
                lines.append(f"?? {rel}")
    return lines


def copy_tree(tree, manifest, dest):
    for entry in manifest["files"]:
        src = os.path.join(tree, entry["path"])
        dst = os.path.join(dest, entry["path"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    for link in manifest.get("symlinks", []):
        dst = os.path.join(dest, link["path"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.symlink(link["target"], dst)


def copy_outputs(work, outputs, target):
    """Copies each declared output (file or folder; links skipped) from the scratch tree; returns the missing ones."""
    missing = []
    for rel in outputs:
        src = os.path.join(work, rel)
        dst = os.path.join(target, rel)
        if os.path.islink(src) or not os.path.exists(src):
            missing.append(rel)
        elif os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=True, ignore_dangling_symlinks=True, dirs_exist_ok=True)
            for dirpath, _dirs, files in os.walk(dst):  # links are not artifacts
                for name in files:
                    if os.path.islink(os.path.join(dirpath, name)):
                        os.unlink(os.path.join(dirpath, name))
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
    return missing


def raw_artifacts(artifacts, orbit_files):
    found = []
    for dirpath, dirnames, filenames in os.walk(artifacts):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, artifacts).replace(os.sep, "/")
            if rel in orbit_files or rel.endswith(".tmp") or os.path.islink(full):
                continue
            found.append({"path": rel, "size": os.path.getsize(full)})
    return found


def write_record(artifacts, record):
    path = os.path.join(artifacts, "upstream_run.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)
    artifacts = os.environ.get("ORBIT_ARTIFACTS_DIR", "artifacts")
    os.makedirs(artifacts, exist_ok=True)
    tree = os.path.abspath(config["tree"])
    with open(config["treeManifest"], encoding="utf-8") as f:
        manifest = json.load(f)
    record = {
        "schema_version": config["schemaVersion"],
        "upstream": {
            "repository": config["repository"],
            "commit": config["commit"],
            "files": len(manifest["files"]),
            "symlinks": len(manifest.get("symlinks", [])),
        },
        "entry": config["entry"],
        "outputs": config["outputs"],
        "host": os.uname().nodename,
        "timings": {},
        "exit_status": None,
        "raw_artifacts": [],
    }
    if manifest.get("commit") != config["commit"]:
        record["aborted"] = f"staged tree is of commit {manifest.get('commit')}, not {config['commit']}"
        say(record["aborted"])
        write_record(artifacts, record)
        return config["dirtyExitCode"]

    say(f"checking the staged tree against {config['repository']}@{config['commit']} ({len(manifest['files'])} files)")
    dirty = tree_status(tree, manifest)
    if dirty:
        say(f"ABORT: the upstream tree is dirty on this host: it differs from commit {config['commit']} (git status --porcelain):")
        for line in dirty[:50]:
            print(f"    {line}", flush=True)
        if len(dirty) > 50:
            print(f"    ... {len(dirty) - 50} more", flush=True)
        record["aborted"] = f"upstream tree is dirty on the host: {len(dirty)} difference(s) from commit {config['commit']}"
        record["dirty"] = dirty[:200]
        write_record(artifacts, record)
        return config["dirtyExitCode"]
    say("tree clean")

    work = tempfile.mkdtemp(prefix="orbit-upstream-")
    child = None

    def forward(signum, _frame):
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        copy_tree(tree, manifest, work)
        env = dict(os.environ)
        # Relative PYTHONPATH entries (staged forks: inputs/forks/<module>) name bundle folders; the entry runs elsewhere.
        if env.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.pathsep.join(p if not p or os.path.isabs(p) else os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep))
        env["ORBIT_UPSTREAM_COMMIT"] = config["commit"]
        env["ORBIT_UPSTREAM_REPOSITORY"] = config["repository"]
        say(f"running {json.dumps(config['entry'])} in a copy of the tree")
        record["timings"]["started_at"] = now()
        t0 = time.monotonic()
        try:
            child = subprocess.Popen(config["entry"], cwd=work, env=env, stdin=subprocess.DEVNULL)
            code = child.wait()
        except OSError as e:
            say(f"the entry could not start: {e}")
            code = 127 if isinstance(e, FileNotFoundError) else 126
        record["timings"]["ended_at"] = now()
        record["timings"]["duration_seconds"] = round(time.monotonic() - t0, 3)
        if code < 0:
            record["exit_status"] = {"code": None, "signal": signal.Signals(-code).name}
            exit_code = 128 - code
        else:
            record["exit_status"] = {"code": code, "signal": None}
            exit_code = code
        say(f"entry ended: {record['exit_status']}")
        target = os.path.join(artifacts, config["artifactsSubdir"])
        record["missing_outputs"] = copy_outputs(work, config["outputs"], target)
        for rel in record["missing_outputs"]:
            say(f"declared output {rel} was not written")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["raw_artifacts"] = raw_artifacts(artifacts, set(config["orbitArtifacts"]))
    write_record(artifacts, record)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
