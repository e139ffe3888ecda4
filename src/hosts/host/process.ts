/**
 * The run's process on the host: launched detached (own session and process group) at most once,
 * probed cheaply, cancelled with TERM then KILL to its whole group. Each script speaks the remote
 * protocol (src/common/protocol.ts) and its output is parsed as untrusted.
 */
import { isSafeRelativePath } from '../../bundle';
import type { LaunchResult, Probe, ProbeState } from '../../common/activities';
import { ARTIFACTS_DIR, EXIT_CODE_FILE, PID_FILE, RUN_SCRIPT, RUNTIME_LOG, SECRET_ENV_FILE } from '../../common/layout';
import { ENV, EXIT, LAUNCH_MARKER_DIR, LAUNCH_PID_FILE, MARK, PROBE_SECTION, WRAPPER_OUT_FILE } from '../../common/protocol';
import { shellQuote as q } from '../../common/shell';
import type { HostContext } from './context';
import { notStagedError } from './errors';
import { enterRunDir, RUN_PID, STAMP, WRITE_MANIFEST } from './scripts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Lines of each log tail a probe returns, and characters of each line. */
const TAIL_LINES = 5;
const TAIL_LINE_CHARS = 500;

/**
 * Starts scripts/orbit/run.sh detached (own session and process group) unless this run was
 * launched already. Secrets (and per-launch env such as ORBIT_RESUME_FROM) travel on stdin into a
 * 0600 file the wrapper reads and deletes.
 */
export async function launchRun(host: HostContext, runId: string, options: { secrets?: Record<string, string>; env?: Record<string, string> } = {}): Promise<LaunchResult> {
  const dir = host.runDir(runId);
  const vars = { ...options.env, ...options.secrets };
  for (const name of Object.keys(vars)) {
    if (!ENV_NAME.test(name)) throw new Error(`launch on ${host.name}: "${name}" is not a valid environment variable name`);
  }
  const secretFile = Object.entries(vars)
    .map(([k, v]) => `export ${k}=${q(v)}\n`)
    .join('');
  const script = `set -u
${enterRunDir(dir, `${q(dir)} does not exist: stage the bundle first`)}
[ -f ${RUN_SCRIPT} ] || { echo "${MARK.error} ${RUN_SCRIPT} is missing: stage the bundle first"; exit ${EXIT.notStaged}; }
if mkdir ${LAUNCH_MARKER_DIR} 2>/dev/null; then
  ( umask 077; cat > ${SECRET_ENV_FILE} )
  [ -s ${SECRET_ENV_FILE} ] || rm -f ${SECRET_ENV_FILE}
  ${ENV.runId}=${q(runId)} setsid nohup bash ${RUN_SCRIPT} </dev/null >${WRAPPER_OUT_FILE} 2>&1 &
  echo "$!" > ${LAUNCH_PID_FILE}
  echo ${MARK.launched}
else
  cat >/dev/null
  echo ${MARK.existing}
fi
for i in $(seq 100); do [ -s ${PID_FILE} ] || [ -s ${EXIT_CODE_FILE} ] && break; sleep 0.1; done
echo "pid=${RUN_PID}"
`;
  const r = await host.transport.exec(script, { stdin: secretFile });
  if (r.code === EXIT.notStaged) throw notStagedError(r.stdout);
  if (r.code !== 0) throw new Error(`launch on ${host.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  const pid = /^pid=(\d{1,10})$/m.exec(r.stdout)?.[1];
  return { pid: pid ? Number(pid) : null, alreadyLaunched: r.stdout.includes(MARK.existing) };
}

/** One cheap look at the run: alive, exit code, artifact bytes and log tails. */
export async function probeRun(host: HostContext, runId: string, taskLogFile: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Probe> {
  const dir = host.runDir(runId);
  const logPath = `${ARTIFACTS_DIR}/${isSafeRelativePath(taskLogFile) ? taskLogFile : 'task.log'}`;
  const tail = (file: string) => `tail -c 4000 ${file} 2>/dev/null | tail -n ${TAIL_LINES}`;
  const script = `cd ${q(dir)} 2>/dev/null || { echo "state=missing"; exit 0; }
pid=$(cat ${PID_FILE} 2>/dev/null)
alive=0
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  alive=1
  if [ -r /proc/$pid/cmdline ] && ! tr '\\0' ' ' < /proc/$pid/cmdline | grep -qF -- ${q(RUN_SCRIPT)}; then alive=0; fi
fi
code=$(cat ${EXIT_CODE_FILE} 2>/dev/null)
launched=0; [ -d ${LAUNCH_MARKER_DIR} ] && launched=1
echo "pid=$pid"; echo "alive=$alive"; echo "exit=$code"; echo "launched=$launched"
echo "bytes=$(du -sb ${ARTIFACTS_DIR} 2>/dev/null | cut -f1)"
echo "${PROBE_SECTION.runtimeLog}"; ${tail(RUNTIME_LOG)}
echo "${PROBE_SECTION.taskLog}"; ${tail(q(logPath))}
`;
  const r = await host.transport.exec(script, { signal: options.signal, timeoutMs: options.timeoutMs, maxOutputBytes: 64 * 1024 });
  return parseProbe(r.stdout);
}

/** TERM to the run's whole process group, KILL after `graceSeconds`; a manifest is written if the wrapper could not. */
export async function cancelRun(host: HostContext, runId: string, graceSeconds: number): Promise<'stopped' | 'killed' | 'not-running'> {
  const dir = host.runDir(runId);
  const grace = Math.max(0, Math.floor(graceSeconds));
  const script = `cd ${q(dir)} 2>/dev/null || { echo ${MARK.notRunning}; exit 0; }
stamp() { ${STAMP}; }
# A group is alive while it has a member that is not a zombie (zombies wait for a slow reaper).
alive() { ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
pid=${RUN_PID}
if [ -z "$pid" ] || ! alive "$pid"; then echo ${MARK.notRunning}; exit 0; fi
echo "$(stamp) cancel requested: TERM to process group $pid" >> ${RUNTIME_LOG}
kill -TERM -- "-$pid" 2>/dev/null
for i in $(seq ${grace * 10}); do alive "$pid" || { echo ${MARK.stopped}; exit 0; }; sleep 0.1; done
alive "$pid" || { echo ${MARK.stopped}; exit 0; }
echo "$(stamp) grace of ${grace}s over: KILL to process group $pid" >> ${RUNTIME_LOG}
kill -KILL -- "-$pid" 2>/dev/null
sleep 0.2
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

/** Parses the probe script's output: `key=value` lines, then the two log tails. */
export function parseProbe(stdout: string): Probe {
  const [head = '', rest = ''] = stdout.split(`\n${PROBE_SECTION.runtimeLog}\n`);
  const [runtimeLog = '', taskLog = ''] = rest.split(`\n${PROBE_SECTION.taskLog}\n`);
  const kv = new Map<string, string>();
  for (const line of head.split('\n')) {
    const m = /^([a-z]+)=(.*)$/.exec(line);
    if (m && m[1]) kv.set(m[1], m[2] ?? '');
  }
  const int = (k: string): number | null => {
    const v = kv.get(k)?.trim() ?? '';
    return /^-?\d{1,12}$/.test(v) ? Number(v) : null;
  };
  const lines = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.trim())
      .slice(-TAIL_LINES)
      .map((l) => l.slice(0, TAIL_LINE_CHARS));
  const pid = int('pid');
  const exitCode = int('exit');
  let state: ProbeState;
  if (kv.get('state') === 'missing') state = 'missing';
  else if (exitCode !== null) state = 'exited';
  else if (kv.get('alive') === '1') state = 'running';
  else if (pid !== null) state = 'vanished';
  else if (kv.get('launched') === '1') state = 'starting';
  else state = 'not-launched';
  return { state, pid, exitCode, artifactBytes: int('bytes') ?? 0, runtimeLogTail: lines(runtimeLog), taskLogTail: lines(taskLog) };
}
