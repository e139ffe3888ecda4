/**
 * The run's process on the host: launched detached (own session and process group) exactly once,
 * probed cheaply, cancelled with TERM then KILL to its whole group, and only while that group is
 * still this run's (the identity the launch recorded, see RUN_GROUP in ./scripts). Each script speaks the remote
 * protocol (src/common/protocol.ts) and its output is parsed as untrusted.
 */
import { randomBytes } from 'node:crypto';
import { isSafeRelativePath } from '../../bundle';
import type { LaunchResult, Probe, ProbeState } from '../../common/activities';
import { ARTIFACTS_DIR, EXIT_CODE_FILE, PID_FILE, RUN_SCRIPT, RUNTIME_DIR, RUNTIME_LOG, SECRET_ENV_FILE } from '../../common/layout';
import { ENV, EXIT, LAUNCH_LOCK_FILE, LAUNCH_MARKER_DIR, LAUNCH_PID_FILE, MARK, PROBE_SECTION, RUN_IDENTITY_FILE, STOP_REASON, WRAPPER_OUT_FILE, type StopReason } from '../../common/protocol';
import { shellQuote as q } from '../../common/shell';
import type { HostContext } from './context';
import { notStagedError } from './errors';
import { enterRunDir, RUN_GROUP, RUN_PID, STAMP, WRITE_MANIFEST } from './scripts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Lines of each log tail a probe returns, and characters of each line. */
const TAIL_LINES = 5;
const TAIL_LINE_CHARS = 500;

/** How long a launch waits for an interrupted attempt's wrapper to show itself (runtime/pid), in tenths of a second. */
const SPAWN_WAIT_TENTHS = 50;
/** How long a launch waits for another attempt of the same run to release the lock, in seconds. */
const LOCK_WAIT_SECONDS = 60;

/**
 * Starts scripts/orbit/run.sh detached (own session and process group) unless this run was
 * launched already. Secrets (and per-launch env such as ORBIT_RESUME_FROM) travel on stdin into a
 * 0600 file the wrapper reads and deletes.
 *
 * Idempotent: attempts of one run take turns on an flock (LAUNCH_LOCK_FILE; where the host has no
 * flock, the mkdir of LAUNCH_MARKER_DIR alone decides). The marker counts as "launched" only with a
 * proof the job started: the wrapper's pid (LAUNCH_PID_FILE), its own runtime/pid, or its exit code.
 * An attempt records the token of the wrapper it is about to start ("spawning") before the spawn; a
 * later attempt that finds the marker without a proof waits a bounded time for that wrapper (its
 * runtime/pid, or a process carrying the token) and otherwise starts the job itself.
 */
export async function launchRun(host: HostContext, runId: string, options: { secrets?: Record<string, string>; env?: Record<string, string> } = {}): Promise<LaunchResult> {
  const dir = host.runDir(runId);
  const vars = { ...options.env, ...options.secrets };
  for (const name of Object.keys(vars)) {
    if (!ENV_NAME.test(name)) throw new Error(`launch on ${host.name}: "${name}" is not a valid environment variable name`);
    if (name === ENV.runToken) throw new Error(`launch on ${host.name}: ${ENV.runToken} is set by the launch itself`);
  }
  const secretFile = Object.entries(vars)
    .map(([k, v]) => `export ${k}=${q(v)}\n`)
    .join('');
  // Not a secret: it tells this run's processes from any other that reuses their pids.
  const token = randomBytes(16).toString('hex');
  const script = `set -u
${enterRunDir(dir, `${q(dir)} does not exist: stage the bundle first`)}
[ -f ${RUN_SCRIPT} ] || { echo "${MARK.error} ${RUN_SCRIPT} is missing: stage the bundle first"; exit ${EXIT.notStaged}; }
${RUN_GROUP}
mkdir -p ${RUNTIME_DIR}
locked=0
if command -v flock >/dev/null 2>&1 && exec 9>>${LAUNCH_LOCK_FILE}; then
  flock -w ${LOCK_WAIT_SECONDS} 9 || { echo "another launch of this run held ${LAUNCH_LOCK_FILE} for ${LOCK_WAIT_SECONDS}s" >&2; exit 1; }
  locked=1
fi
# Proof that an earlier attempt started the job: the wrapper spawned (its pid recorded), or ran.
started() { [ -s ${LAUNCH_PID_FILE} ] || [ -s ${PID_FILE} ] || [ -s ${EXIT_CODE_FILE} ]; }
# The process group of a live process carrying token $1 (an earlier attempt's wrapper, not yet recorded).
token_group() {
  [ -n "$1" ] || return 1
  local f g
  for f in $(grep -lzxF "${ENV.runToken}=$1" /proc/[0-9]*/environ 2>/dev/null); do
    g=$(ps -o pgid= -p "$(echo "$f" | cut -d/ -f3)" 2>/dev/null | tr -d ' ')
    [ -n "$g" ] && { echo "$g"; return 0; }
  done
  return 1
}
record_identity() { printf 'pid=%s\\nstarttime=%s\\ntoken=%s\\n' "$1" "$(proc_start "$1")" "$2" > ${RUN_IDENTITY_FILE}.tmp && mv -f ${RUN_IDENTITY_FILE}.tmp ${RUN_IDENTITY_FILE}; }
fresh=0; mkdir ${LAUNCH_MARKER_DIR} 2>/dev/null && fresh=1
group=""
if [ $fresh = 0 ] && ! started && { [ -n "$(identity token)" ] || [ $locked = 0 ]; }; then
  # An earlier attempt got as far as "spawning" (or, without flock, may be under way): give its wrapper time to show itself.
  for i in $(seq ${SPAWN_WAIT_TENTHS}); do
    started && break
    group=$(token_group "$(identity token)") && break
    sleep 0.1
  done
fi
if [ $fresh = 1 ] || { ! started && [ -z "$group" ]; }; then
  [ $fresh = 1 ] || echo "$(${STAMP}) launch found ${LAUNCH_MARKER_DIR} without a started job (an interrupted launch): starting it" >> ${RUNTIME_LOG}
  ( umask 077; cat > ${SECRET_ENV_FILE} )
  [ -s ${SECRET_ENV_FILE} ] || rm -f ${SECRET_ENV_FILE}
  printf 'token=%s\\n' ${token} > ${RUN_IDENTITY_FILE}.tmp && mv -f ${RUN_IDENTITY_FILE}.tmp ${RUN_IDENTITY_FILE}
  ${ENV.runId}=${q(runId)} ${ENV.runToken}=${token} setsid nohup bash ${RUN_SCRIPT} </dev/null >${WRAPPER_OUT_FILE} 2>&1 9>&- &
  group=$!
  echo "$group" > ${LAUNCH_PID_FILE}
  record_identity "$group" ${token}
  echo ${MARK.launched}
else
  cat >/dev/null
  if [ -z "$(identity pid)" ] && [ -n "$(identity token)" ]; then
    # The attempt that spawned the wrapper ended before it recorded it: record it now.
    [ -n "$group" ] || group=${RUN_PID}
    if has_token "$group" "$(identity token)"; then
      [ -s ${LAUNCH_PID_FILE} ] || echo "$group" > ${LAUNCH_PID_FILE}
      record_identity "$group" "$(identity token)"
    fi
  fi
  echo ${MARK.existing}
fi
[ $locked = 1 ] && exec 9>&-
for i in $(seq 100); do [ -s ${PID_FILE} ] || [ -s ${EXIT_CODE_FILE} ] && break; sleep 0.1; done
echo "pid=${RUN_PID}"
`;
  const r = await host.transport.exec(script, { stdin: secretFile });
  if (r.code === EXIT.notStaged) throw notStagedError(r.stdout);
  if (r.code !== 0) throw new Error(`launch on ${host.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  const pid = /^pid=(\d{1,10})$/m.exec(r.stdout)?.[1];
  return { pid: pid ? Number(pid) : null, alreadyLaunched: r.stdout.includes(MARK.existing) };
}

/**
 * One cheap look at the run: alive (its leader runs and is this run's, RUN_GROUP), exit code, artifact
 * bytes, the free and total space of the filesystem holding the run folder (df), and log tails.
 */
export async function probeRun(host: HostContext, runId: string, taskLogFile: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Probe> {
  const dir = host.runDir(runId);
  const logPath = `${ARTIFACTS_DIR}/${isSafeRelativePath(taskLogFile) ? taskLogFile : 'task.log'}`;
  const tail = (file: string) => `tail -c 4000 ${file} 2>/dev/null | tail -n ${TAIL_LINES}`;
  const script = `cd ${q(dir)} 2>/dev/null || { echo "state=missing"; exit 0; }
${RUN_GROUP}
pid=$(cat ${PID_FILE} 2>/dev/null)
alive=0
if [ -n "$pid" ] && leader_alive "$pid"; then alive=1; fi
code=$(cat ${EXIT_CODE_FILE} 2>/dev/null)
launched=0; [ -d ${LAUNCH_MARKER_DIR} ] && launched=1
echo "pid=$pid"; echo "alive=$alive"; echo "exit=$code"; echo "launched=$launched"
echo "bytes=$(du -sb ${ARTIFACTS_DIR} 2>/dev/null | cut -f1)"
echo "disk=$(df -Pk . 2>/dev/null | awk 'NR==2 {print $4, $2}')"
echo "${PROBE_SECTION.runtimeLog}"; ${tail(RUNTIME_LOG)}
echo "${PROBE_SECTION.taskLog}"; ${tail(q(logPath))}
`;
  const r = await host.transport.exec(script, { signal: options.signal, timeoutMs: options.timeoutMs, maxOutputBytes: 64 * 1024 });
  return parseProbe(r.stdout);
}

/** One run of a batched probe: its id and its task log (relative to artifacts/, as the job spec names it). */
export interface ProbeTarget {
  runId: string;
  taskLogFile: string;
}

/**
 * The state of its run folder that leader_alive needs, read with shell builtins only: the batch
 * probes hundreds of runs per command, and the common case (an identity with a start time, written by
 * every launch) must cost no process. Anything else falls back to leader_alive itself.
 */
const FAST_ALIVE = `fast_alive() {
  case "$1" in ''|*[!0-9]*|0|1) return 1 ;; esac
  kill -0 "$1" 2>/dev/null || return 1
  local line= kv k ipid= istart= f
  { read -r line < /proc/$1/stat; } 2>/dev/null || [ -n "$line" ] || return 1
  f=(\${line##*) })
  [ "\${f[0]}" != Z ] || return 1
  if [ -f ${RUN_IDENTITY_FILE} ]; then
    while IFS= read -r kv || [ -n "$kv" ]; do
      k=\${kv%%=*}
      case $k in pid) [ -n "$ipid" ] || ipid=\${kv#*=} ;; starttime) [ -n "$istart" ] || istart=\${kv#*=} ;; esac
    done < ${RUN_IDENTITY_FILE}
  fi
  if [ -n "\${f[19]}" ] && [ -n "$istart" ]; then [ "$ipid" = "$1" ] && [ "\${f[19]}" = "$istart" ]; return; fi
  leader_alive "$1"
}`;

/**
 * Probes many runs of this host in ONE command (the monitors of a worker share it, see
 * src/activities/probes.ts): for each run what probeRun says, parsed by the same parseProbe. Per
 * run it costs one `tail` (both logs) and shell builtins; `du` and `df` run once for the whole batch (so a file
 * hard-linked into two runs' artifacts/ counts in the first one only). Each
 * run's section starts with a line carrying a fresh random nonce, so nothing a job writes into its
 * logs can pass for another run's answer. Throws when the host does not answer (every run of the
 * batch is then unreachable alike).
 */
export async function probeRuns(host: HostContext, targets: ProbeTarget[], options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Map<string, Probe>> {
  const runs = targets.map((t) => ({ ...t, dir: host.runDir(t.runId), log: `${ARTIFACTS_DIR}/${isSafeRelativePath(t.taskLogFile) ? t.taskLogFile : 'task.log'}` }));
  const out = new Map<string, Probe>();
  if (runs.length === 0) return out;
  const nonce = randomBytes(12).toString('hex');
  const perRun = runs
    .map(
      (r, i) => `echo "${nonce} run ${i}"
if cd ${q(r.dir)} 2>/dev/null; then
  pid=; code=; launched=0; alive=0
  [ -f ${PID_FILE} ] && { read -r pid < ${PID_FILE} || :; }
  [ -f ${EXIT_CODE_FILE} ] && { read -r code < ${EXIT_CODE_FILE} || :; }
  [ -d ${LAUNCH_MARKER_DIR} ] && launched=1
  [ -n "$pid" ] && fast_alive "$pid" && alive=1
  echo "pid=$pid"; echo "alive=$alive"; echo "exit=$code"; echo "launched=$launched"
  echo "${nonce} tails ${i}"; tail -v -c 4000 -- ${RUNTIME_LOG} ${q(r.log)} 2>/dev/null; echo
  here+=(${q(r.dir)}); idx+=(${i})
else
  echo "state=missing"
fi`,
    )
    .join('\n');
  const script = `${RUN_GROUP}
${FAST_ALIVE}
here=(); idx=()
${perRun}
cd /
echo "${nonce} du"
du -sb -- ${runs.map((r) => q(`${r.dir}/${ARTIFACTS_DIR}`)).join(' ')} 2>/dev/null
echo "${nonce} df"
[ \${#here[@]} -gt 0 ] && df -Pk -- "\${here[@]}" 2>/dev/null | awk -v idx="\${idx[*]}" 'BEGIN { n = split(idx, at, " ") } NR > 1 && NR - 1 <= n { print at[NR - 1], $4, $2 }'
echo "${nonce} end"
`;
  const r = await host.transport.exec(script, { signal: options.signal, timeoutMs: options.timeoutMs, maxOutputBytes: 64 * 1024 + runs.length * 16 * 1024 });
  if (r.code !== 0 || !r.stdout.includes(`${nonce} end`)) throw new Error(`batched probe on ${host.name} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300) || 'no answer'}`);
  const sections = r.stdout.split(new RegExp(`^${nonce} `, 'm'));
  const bytes = new Map<string, number>();
  const disks = new Map<number, string>();
  const tailsSeen = new Set<string>();
  for (const section of sections) {
    const nl = section.indexOf('\n');
    const title = section.slice(0, nl < 0 ? section.length : nl);
    const body = nl < 0 ? '' : section.slice(nl + 1);
    const run = /^run (\d{1,9})$/.exec(title);
    const tails = /^tails (\d{1,9})$/.exec(title);
    if (run) {
      const target = runs[Number(run[1])];
      if (target && !out.has(target.runId)) out.set(target.runId, parseProbe(body));
    } else if (tails) {
      const target = runs[Number(tails[1])];
      const p = target && out.get(target.runId);
      if (p && !tailsSeen.has(target.runId)) {
        tailsSeen.add(target.runId);
        Object.assign(p, splitTails(body, RUNTIME_LOG, target.log));
      }
    } else if (title === 'du') {
      for (const line of body.split('\n')) {
        const m = /^(\d{1,18})\t(.*)$/.exec(line);
        if (m) bytes.set(m[2]!, Number(m[1]));
      }
    } else if (title === 'df') {
      for (const line of body.split('\n')) {
        const m = /^(\d{1,9}) (.*)$/.exec(line);
        if (m) disks.set(Number(m[1]), m[2]!);
      }
    }
  }
  runs.forEach((t, i) => {
    const p = out.get(t.runId);
    if (!p || p.state === 'missing') return;
    const b = bytes.get(`${t.dir}/${ARTIFACTS_DIR}`);
    p.artifactBytes = b !== undefined && Number.isSafeInteger(b) ? b : 0;
    Object.assign(p, parseDisk(disks.get(i)));
  });
  for (const t of runs) if (!out.has(t.runId)) throw new Error(`batched probe on ${host.name}: no answer for run ${t.runId}`);
  return out;
}

/**
 * TERM to the run's whole process group, KILL after `graceSeconds`; a manifest is written if the wrapper could not.
 * Before every signal the group is checked to be this run's (RUN_GROUP): a pid reused by anything else is never signalled.
 * `why` (a cancel, the run's timeout) goes on the `cancel requested` line of runtime.log as `why=<reason>`.
 */
export async function cancelRun(host: HostContext, runId: string, graceSeconds: number, why?: StopReason): Promise<'stopped' | 'killed' | 'not-running'> {
  const dir = host.runDir(runId);
  const grace = Math.max(0, Math.floor(graceSeconds));
  // One of a fixed set of words: safe inside the script as it is.
  const whyField = why && (Object.values(STOP_REASON) as string[]).includes(why) ? ` why=${why}` : '';
  const script = `cd ${q(dir)} 2>/dev/null || { echo ${MARK.notRunning}; exit 0; }
stamp() { ${STAMP}; }
${RUN_GROUP}
pid=${RUN_PID}
# The run's group, alive (a member that is not a zombie waiting for a slow reaper) and still this run's.
running() { group_alive "$pid" && group_is_run "$pid"; }
running || { echo ${MARK.notRunning}; exit 0; }
echo "$(stamp) cancel requested: TERM to process group $pid${whyField}" >> ${RUNTIME_LOG}
kill -TERM -- "-$pid" 2>/dev/null
for i in $(seq ${grace * 10}); do running || { echo ${MARK.stopped}; exit 0; }; sleep 0.1; done
running || { echo ${MARK.stopped}; exit 0; }
echo "$(stamp) grace of ${grace}s over: KILL to process group $pid" >> ${RUNTIME_LOG}
kill -KILL -- "-$pid" 2>/dev/null
sleep 0.2
# The killed wrapper could not free its disk reserve (run.sh): free it, so the manifest has room on a full disk.
rm -f .orbit-disk-reserve
if [ ! -s ${EXIT_CODE_FILE} ]; then
  ${WRITE_MANIFEST}
  echo ${EXIT.killed} > ${EXIT_CODE_FILE}
fi
echo ${MARK.killed}
`;
  const r = await host.transport.exec(script);
  if (r.stdout.includes(MARK.killed)) return 'killed';
  if (r.stdout.includes(MARK.stopped)) return 'stopped';
  return 'not-running';
}

/** The last TAIL_LINES non-blank lines of a log's tail, each cut at TAIL_LINE_CHARS. */
function tailLines(s: string): string[] {
  return s
    .split('\n')
    .filter((l) => l.trim())
    .slice(-TAIL_LINES)
    .map((l) => l.slice(0, TAIL_LINE_CHARS));
}

/**
 * The two logs of one run from ONE `tail -v -c N -- <runtime log> <task log>` (the batched probe's
 * single process per run): GNU tail heads each file it could open with `==> name <==`. Either may be
 * missing. What a job writes into its own logs can only mislead its own run's tails, never another's.
 */
export function splitTails(out: string, runtimeName: string, taskName: string): { runtimeLogTail: string[]; taskLogTail: string[] } {
  const head = (name: string) => `==> ${name} <==\n`;
  let runtime = '';
  let task = '';
  if (out.startsWith(head(runtimeName))) {
    const rest = out.slice(head(runtimeName).length);
    const at = rest.indexOf(`\n${head(taskName)}`);
    runtime = at < 0 ? rest : rest.slice(0, at);
    task = at < 0 ? '' : rest.slice(at + 1 + head(taskName).length);
  } else if (out.startsWith(head(taskName))) {
    task = out.slice(head(taskName).length);
  }
  return { runtimeLogTail: tailLines(runtime), taskLogTail: tailLines(task) };
}

/** Parses the probe script's output: `key=value` lines, then the two log tails. */
export function parseProbe(stdout: string): Probe {
  const [head = '', rest = ''] = stdout.split(`\n${PROBE_SECTION.runtimeLog}\n`);
  // An empty runtime log leaves the task log's marker first: the newline before it is the first split's.
  const [runtimeLog = '', taskLog = ''] = `\n${rest}`.split(`\n${PROBE_SECTION.taskLog}\n`);
  const kv = new Map<string, string>();
  for (const line of head.split('\n')) {
    const m = /^([a-z]+)=(.*)$/.exec(line);
    if (m && m[1]) kv.set(m[1], m[2] ?? '');
  }
  const int = (k: string): number | null => {
    const v = kv.get(k)?.trim() ?? '';
    return /^-?\d{1,12}$/.test(v) ? Number(v) : null;
  };
  const lines = tailLines;
  const pid = int('pid');
  const exitCode = int('exit');
  let state: ProbeState;
  if (kv.get('state') === 'missing') state = 'missing';
  else if (exitCode !== null) state = 'exited';
  else if (kv.get('alive') === '1') state = 'running';
  else if (pid !== null) state = 'vanished';
  else if (kv.get('launched') === '1') state = 'starting';
  else state = 'not-launched';
  const disk = parseDisk(kv.get('disk'));
  return { state, pid, exitCode, artifactBytes: int('bytes') ?? 0, ...disk, runtimeLogTail: lines(runtimeLog), taskLogTail: lines(taskLog) };
}

/**
 * `disk=AVAILABLE TOTAL` (KiB, from `df -Pk`) as whole MB; nothing when the host's answer is not two
 * plain numbers with the free space no larger than the total.
 */
function parseDisk(value: string | undefined): Pick<Probe, 'diskFreeMb' | 'diskTotalMb'> {
  const m = /^(\d{1,18}) (\d{1,18})$/.exec(value?.trim() ?? '');
  if (!m) return {};
  const freeKb = Number(m[1]);
  const totalKb = Number(m[2]);
  if (!Number.isSafeInteger(freeKb) || !Number.isSafeInteger(totalKb) || totalKb === 0 || freeKb > totalKb) return {};
  return { diskFreeMb: Math.floor(freeKb / 1024), diskTotalMb: Math.floor(totalKb / 1024) };
}
