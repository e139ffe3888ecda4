/** `orbit queue`'s fleet query when a worker polled lately but none answers: however the deadline surfaces, one line naming it. */
import { ServiceError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/errors';
import { fleetViewOf } from '../../src/cli/fleet';

/**
 * A client whose fleet query fails with gRPC `code` `offsetMs` after the deadline it was given (a
 * negative offset: before it), or at once when offsetMs is undefined; a worker polled a moment ago.
 */
function client(code: number, offsetMs: number | undefined): Client {
  return {
    options: { namespace: 'default' },
    workflow: { getHandle: (id: string) => ({ workflowId: id, query: async () => undefined }) },
    workflowService: { describeTaskQueue: async () => ({ pollers: [{ identity: 'w@host', lastAccessTime: { seconds: Date.now() / 1000 } }] }) },
    connection: {
      withDeadline: async (deadline: number) => {
        if (offsetMs !== undefined) await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now() + offsetMs)));
        throw Object.assign(new Error(code === 1 ? 'Call cancelled' : 'Deadline exceeded'), { code });
      },
    },
  } as unknown as Client;
}

describe('the fleet query at its deadline', () => {
  it.each([
    ['DEADLINE_EXCEEDED', 4, 5],
    ['CANCELLED at the deadline', 1, 5],
    // grpc-js's timer can fire a hair before Date.now() reaches the deadline (seen in CI)
    ['CANCELLED 3 ms before the deadline', 1, -3],
  ])('%s reads as "did not answer within 5 s", exit 3', async (_name, code, offsetMs) => {
    const err = await fleetViewOf(client(code, offsetMs)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toMatch(/^the fleet \(workflow \S+\) did not answer within 5 s: a worker polled task queue ".*" lately but none answered/);
    expect((err as CliError).exitCode).toBe(3);
  }, 10_000);

  it('a CANCELLED well before the deadline is not taken for it', async () => {
    const err = await fleetViewOf(client(1, undefined)).then(() => undefined, (e: unknown) => e);
    expect(err).not.toBeInstanceOf(CliError);
    expect((err as Error).message).toBe('Call cancelled');
  });

  it("the server's own 'no poller seen' reads as no worker, even while the task queue still lists the one that just stopped", async () => {
    const c = client(9, undefined);
    const grpc = Object.assign(new Error('9 FAILED_PRECONDITION: no poller seen for task queue recently, worker may be down'), {
      code: 9,
      details: 'no poller seen for task queue recently, worker may be down',
    });
    (c.connection as unknown as { withDeadline: () => Promise<never> }).withDeadline = async () => {
      throw new ServiceError('Failed to query Workflow', { cause: grpc });
    };
    const err = await fleetViewOf(c).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toMatch(/^the fleet \(workflow \S+\) cannot answer: no worker is polling task queue ".*", so nothing will run until one starts: `orbit worker`/);
    expect((err as CliError).exitCode).toBe(3);
  });
});
