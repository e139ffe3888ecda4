/** Evidence lines as the layers quote them: a line of a file, and a stamped line of runtime/runtime.log. */
import { RUNTIME_LOG } from '../common/layout';
import type { Evidence } from './findings';
import type { RuntimeEvent } from './sources';

export const ev = (file: string, e: { line: number; text: string }): Evidence => ({ file, line: e.line, text: e.text });
export const runtimeEv = (e: RuntimeEvent): Evidence => ({ file: RUNTIME_LOG, line: e.line, text: `${e.time} ${e.text}` });
