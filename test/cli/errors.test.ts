import { ServiceError } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/bundle';
import { CliError, temporalCliError } from '../../src/cli/errors';
import { reportError } from '../../src/cli/report-error';
import { InventoryNotFoundError } from '../../src/hosts/inventory';

const where = { address: '127.0.0.1:7233', namespace: 'nope' };
const NOPE = 'Temporal namespace "nope" does not exist at 127.0.0.1:7233; create it (temporal operator namespace create --namespace nope) or set TEMPORAL_NAMESPACE to an existing one';

/** What the gRPC client throws: an Error with a status code and details. */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} X: ${details}`), { code, details, metadata: { get: () => [] } });
}

/** reportError's printed lines and exit code. */
function report(e: unknown): { code: number; lines: string[] } {
  const lines: string[] = [];
  const code = reportError(e, (s) => lines.push(...s.split('\n')), () => where);
  return { code, lines };
}

describe('the CLI error handler', () => {
  it('turns an unknown namespace into one line, exit code 3, however it is wrapped', () => {
    expect(report(new NamespaceNotFoundError('nope'))).toEqual({ code: 3, lines: [`orbit: ${NOPE}`] });
    expect(report(new ServiceError('start failed', { cause: new NamespaceNotFoundError('nope') }))).toEqual({ code: 3, lines: [`orbit: ${NOPE}`] });
    expect(report(grpcError(5, 'Namespace nope is not found.'))).toEqual({ code: 3, lines: [`orbit: ${NOPE}`] });
  });

  it('turns other Temporal service and connection errors into one line, exit code 3', () => {
    expect(report(grpcError(14, 'No connection established'))).toEqual({
      code: 3,
      lines: ['orbit: cannot reach Temporal at 127.0.0.1:7233 (No connection established); check that it runs (orbit up for the embedded server) or set TEMPORAL_ADDRESS'],
    });
    expect(report(new ServiceError('Failed to query workflow', { cause: grpcError(16, 'Request unauthorized.') }))).toEqual({
      code: 3,
      lines: ['orbit: Temporal at 127.0.0.1:7233 refused the request for namespace "nope" (Request unauthorized.); check TEMPORAL_API_KEY and the TLS settings'],
    });
    expect(report(new ServiceError('Failed to list schedules\nmore detail'))).toEqual({
      code: 3,
      lines: ['orbit: Temporal at 127.0.0.1:7233 (namespace "nope") failed the request: Failed to list schedules'],
    });
    expect(temporalCliError(new Error('plain'), where)).toBeUndefined();
  });

  it('prints a CliError as is, a one-problem ValidationError in one line, a missing hosts file with exit code 2', () => {
    expect(report(new CliError('bad', 2))).toEqual({ code: 2, lines: ['orbit: bad'] });
    expect(report(new ValidationError('hosts file /h.yaml', [{ path: 'line 3, column 5', message: 'YAML syntax: Map keys must be unique' }]))).toEqual({
      code: 2,
      lines: ['orbit: hosts file /h.yaml is invalid: line 3, column 5: YAML syntax: Map keys must be unique'],
    });
    expect(report(new InventoryNotFoundError('/nope'))).toEqual({
      code: 2,
      lines: ['orbit: hosts file /nope cannot be read; create it, or point --hosts / ORBIT_HOSTS at an existing hosts.yaml'],
    });
  });

  it('keeps the stack, exit code 1, for a bug', () => {
    const r = report(new TypeError('x is undefined'));
    expect(r.code).toBe(1);
    expect(r.lines[0]).toBe('TypeError: x is undefined');
    expect(r.lines.length).toBeGreaterThan(1);
  });
});
