/**
 * Bash pieces more than one host script uses, over the remote protocol's names
 * (src/common/protocol.ts, src/common/layout.ts). Each runs from inside the run folder.
 */
import { EXIT_CODE_FILE, MANIFEST_FILE, MANIFEST_SCRIPT, PID_FILE, RUNTIME_LOG } from '../../common/layout';
import { EXIT, LAUNCH_PID_FILE, MARK } from '../../common/protocol';
import { shellQuote as q } from '../../common/shell';

/** A UTC timestamp with milliseconds, as runtime.log lines start. */
export const STAMP = 'date -u +%Y-%m-%dT%H:%M:%S.%3NZ';

/** The process group to signal: run.sh's own pid, else the launched wrapper's. */
export const RUN_PID = `$(cat ${PID_FILE} 2>/dev/null || cat ${LAUNCH_PID_FILE} 2>/dev/null)`;

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
export const SEAL_VANISHED = `pid=$(cat ${PID_FILE} 2>/dev/null)
if [ -n "$pid" ] && [ ! -s ${EXIT_CODE_FILE} ] && [ ! -s ${MANIFEST_FILE} ] && ! kill -0 "$pid" 2>/dev/null; then
  ${WRITE_MANIFEST}
  echo "$(${STAMP}) process $pid vanished without an exit code; manifest of what remains written by Orbit" >> ${RUNTIME_LOG}
fi`;
