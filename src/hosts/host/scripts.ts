/**
 * Bash pieces more than one host script uses, over the remote protocol's names
 * (src/common/protocol.ts, src/common/layout.ts). Each runs from inside the run folder.
 */
import { EXIT_CODE_FILE, MANIFEST_FILE, MANIFEST_SCRIPT, PID_FILE, RUN_SCRIPT, RUNTIME_LOG } from '../../common/layout';
import { ENV, EXIT, LAUNCH_PID_FILE, MARK, RUN_IDENTITY_FILE } from '../../common/protocol';
import { shellQuote as q } from '../../common/shell';

/** A UTC timestamp with milliseconds, as runtime.log lines start. */
export const STAMP = 'date -u +%Y-%m-%dT%H:%M:%S.%3NZ';

/** The process group to signal: run.sh's own pid, else the launched wrapper's. */
export const RUN_PID = `$(cat ${PID_FILE} 2>/dev/null || cat ${LAUNCH_PID_FILE} 2>/dev/null)`;

/**
 * Bash functions that tell whether a process group is still this run's, from the identity the launch
 * recorded in RUN_IDENTITY_FILE (a pid alone may have been reused by anything since):
 *   identity KEY        a value of RUN_IDENTITY_FILE (pid, starttime, token), empty when absent
 *   proc_start PID      field 22 of /proc/PID/stat (starttime), empty when PID does not exist
 *   proc_state PID      field 3 of /proc/PID/stat (R, S, Z, ...)
 *   has_token PID TOK   PID's environment holds ORBIT_RUN_TOKEN=TOK
 *   group_alive PGID    the group has a member that is not a zombie
 *   group_is_run PGID   the group is this run's: its leader exists and has the recorded pid and start
 *                       time; or, with no start time recorded, the leader carries the token; or, the
 *                       leader gone, a member carries the token. A run launched before identities were
 *                       recorded (no identity file): its leader runs run.sh with this folder as its cwd.
 *   leader_alive PID    PID runs, is not a zombie, and leads this run's group
 * Only digits above 1 count as a group: never `kill -- -1` or `-0`.
 */
export const RUN_GROUP = `identity() { sed -n "s/^$1=//p" ${RUN_IDENTITY_FILE} 2>/dev/null | head -n 1; }
proc_field() { sed 's/^.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f$2; }
proc_start() { proc_field "$1" 20; }
proc_state() { proc_field "$1" 1; }
has_token() { [ -n "$2" ] && grep -qzxF "${ENV.runToken}=$2" /proc/$1/environ 2>/dev/null; }
group_alive() { ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
group_is_run() {
  case "$1" in ''|*[!0-9]*|0|1) return 1 ;; esac
  local st want tok p
  st=$(proc_start "$1"); want=$(identity starttime); tok=$(identity token)
  if [ -n "$st" ]; then
    if [ -n "$want" ]; then [ "$(identity pid)" = "$1" ] && [ "$st" = "$want" ]; return; fi
    if [ -n "$tok" ]; then has_token "$1" "$tok"; return; fi
    [ ! -e ${RUN_IDENTITY_FILE} ] && [ "$(readlink /proc/$1/cwd 2>/dev/null)" = "$(pwd -P)" ] && tr '\\0' ' ' < /proc/$1/cmdline 2>/dev/null | grep -qF -- ${q(RUN_SCRIPT)}
    return
  fi
  [ -n "$tok" ] || return 1
  for p in $(ps -e -o pid=,pgid= 2>/dev/null | awk -v g="$1" '$2 == g { print $1 }'); do has_token "$p" "$tok" && return 0; done
  return 1
}
leader_alive() { kill -0 "$1" 2>/dev/null && [ "$(proc_state "$1")" != Z ] && group_is_run "$1"; }`;

/** Writes artifacts/manifest.json of what is on disk now (through a temporary file). */
export const WRITE_MANIFEST = `python3 ${MANIFEST_SCRIPT} "$PWD" > ${MANIFEST_FILE}.tmp 2>/dev/null && mv -f ${MANIFEST_FILE}.tmp ${MANIFEST_FILE}`;

/** Enters the run folder, or prints MARK.error and `message` and exits EXIT.notStaged. */
export function enterRunDir(dir: string, message: string): string {
  return `cd ${q(dir)} 2>/dev/null || { echo ${MARK.error} ${message}; exit ${EXIT.notStaged}; }`;
}

/**
 * Before a final collection: a run whose wrapper died without writing its exit code (killed, host
 * rebooted) gets a manifest of what is on disk now, so what is collected can still be verified.
 */
export const SEAL_VANISHED = `${RUN_GROUP}
pid=$(cat ${PID_FILE} 2>/dev/null)
if [ -n "$pid" ] && [ ! -s ${EXIT_CODE_FILE} ] && [ ! -s ${MANIFEST_FILE} ] && ! leader_alive "$pid"; then
  ${WRITE_MANIFEST}
  echo "$(${STAMP}) process $pid vanished without an exit code; manifest of what remains written by Orbit" >> ${RUNTIME_LOG}
fi`;
