import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * With ORBIT_RECORD_HISTORIES=1, saves a finished run's history under test/histories/ for the
 * replay tests; otherwise does nothing.
 */
export async function recordHistory(name: string, handle: WorkflowHandle): Promise<void> {
  if (!process.env.ORBIT_RECORD_HISTORIES) return;
  const json = JSON.stringify(JSON.parse(historyToJSON(await handle.fetchHistory())), null, 1);
  await writeFile(join(__dirname, '..', 'histories', `${name}.json`), json + '\n');
}
