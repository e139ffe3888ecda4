import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/common/seeded-random';
import { candidatesOf, conditionOf, describeResources, emptyFleet, enqueue, fleetWorkflowId, LOCAL_HOST, leaseCost, neverFits, queueOrder, releaseHolder, releaseLease, schedule, unmetBy, usageOf, type FleetHostSpec, type FleetState, type Holder, type Lease, type LeaseRequest, type LeaseResources, type ScheduleResult } from '../../src/common/fleet';
import { markAnswering, markLost, setDrained, setInventory } from '../../src/common/fleet-hosts';
import { fleetView } from '../../src/common/fleet-view';

// ------------------------------------------------------------------ builders

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T00:01:00.000Z';
const T2 = '2025-01-01T00:02:00.000Z';

/** A host with `gpus` GPUs (indices 0..n-1 unless given) and roomy CPU/memory unless told. */
function host(name: string, gpus: number | number[], o: Partial<Omit<FleetHostSpec, 'name' | 'gpus'>> = {}): FleetHostSpec {
  return {
    name,
    gpus: typeof gpus === 'number' ? Array.from({ length: gpus }, (_, i) => i) : gpus,
    cpus: 64,
    memoryGb: 256,
    labels: [],
    ...o,
  };
}

const holder = (workflowId: string, runId = 'run-1'): Holder => ({ workflowId, runId });

/** A request from workflow `wf` (run "run-1" unless `o.holder` says otherwise). */
function req(
  wf: string,
  resources: Partial<LeaseResources> = {},
  o: Partial<Omit<LeaseRequest, 'resources'>> = {},
): LeaseRequest {
  return {
    holder: holder(wf),
    requestId: 'launch',
    priority: 0,
    ...o,
    resources: { gpus: 1, cpus: 1, memoryGb: 1, ...resources },
  };
}

/** A fleet that has been told its hosts. */
function fleetOf(...specs: FleetHostSpec[]): FleetState {
  const s = emptyFleet();
  setInventory(s, specs, T0);
  return s;
}

function submit(state: FleetState, ...reqs: LeaseRequest[]): void {
  for (const r of reqs) expect(enqueue(state, r, T0)).toBe('queued');
}

/** Workflow ids granted by a schedule pass, in grant order. */
const grantedIds = (r: ScheduleResult) => r.grants.map((g) => g.lease.holder.workflowId);
const queuedIds = (s: FleetState) => queueOrder(s.queue).map((q) => q.holder.workflowId);
const leaseOf = (s: FleetState, wf: string): Lease => {
  const l = s.leases.find((x) => x.holder.workflowId === wf);
  if (!l) throw new Error(`no lease for ${wf}`);
  return l;
};
const release = (s: FleetState, wf: string) => expect(releaseLease(s, leaseOf(s, wf).token, leaseOf(s, wf).holder)).toBeDefined();

/** The safety properties every fleet state must keep, whatever happened. */
function expectConsistent(s: FleetState): void {
  for (const [name, h] of Object.entries(s.hosts)) {
    const held = s.leases.filter((l) => l.host === name);
    const gpus = held.flatMap((l) => l.gpus);
    expect(new Set(gpus).size, `gpu indices overlap on ${name}`).toBe(gpus.length);
    for (const g of gpus) expect(h.spec.gpus, `gpu ${g} not on ${name}`).toContain(g);
    expect(held.reduce((a, l) => a + l.cpus, 0), `cpus over on ${name}`).toBeLessThanOrEqual(h.spec.cpus);
    expect(held.reduce((a, l) => a + l.memoryGb, 0), `memory over on ${name}`).toBeLessThanOrEqual(h.spec.memoryGb);
    if (held.some((l) => l.exclusive)) expect(held, `exclusive lease shares ${name}`).toHaveLength(1);
  }
  for (const l of s.leases) expect(s.hosts[l.host], `lease on unknown host ${l.host}`).toBeDefined();
  const tokens = s.leases.map((l) => l.token);
  expect(new Set(tokens).size).toBe(tokens.length);
  for (const q of s.queue) {
    const same = (x: { holder: Holder; requestId: string }) => x.holder.workflowId === q.holder.workflowId && x.holder.runId === q.holder.runId && x.requestId === q.requestId;
    expect(s.leases.some(same), `${q.holder.workflowId}/${q.requestId} both queued and granted`).toBe(false);
    expect(s.queue.filter(same)).toHaveLength(1);
  }
}

// ------------------------------------------------------------------ enqueue

describe('enqueue', () => {
  it('queues a request with an increasing seq and the time it arrived', () => {
    const s = fleetOf(host('a', 4));
    expect(enqueue(s, req('w1'), T0)).toBe('queued');
    expect(enqueue(s, req('w2'), T1)).toBe('queued');
    expect(s.queue.map((q) => [q.holder.workflowId, q.seq, q.queuedAt])).toEqual([
      ['w1', 1, T0],
      ['w2', 2, T1],
    ]);
    expect(s.nextSeq).toBe(3);
  });

  it('ignores a repeat of a queued request (same holder and requestId)', () => {
    const s = emptyFleet();
    expect(enqueue(s, req('w1'), T0)).toBe('queued');
    expect(enqueue(s, req('w1', { gpus: 3 }), T1)).toBe('duplicate');
    expect(s.queue).toHaveLength(1);
    expect(s.queue[0]!.resources.gpus).toBe(1);
    expect(s.queue[0]!.queuedAt).toBe(T0);
  });

  it('ignores a repeat of a request already granted, and schedules nothing more for it', () => {
    const s = fleetOf(host('a', 4));
    submit(s, req('w1'));
    expect(schedule(s, T1).grants).toHaveLength(1);
    expect(enqueue(s, req('w1'), T2)).toBe('duplicate');
    expect(s.queue).toHaveLength(0);
    expect(schedule(s, T2).grants).toHaveLength(0);
    expect(s.leases).toHaveLength(1);
    expect(s.stats.granted).toBe(1);
  });

  it('treats another requestId, or another workflow with the same requestId, as a new request', () => {
    const s = emptyFleet();
    submit(s, req('w1'), req('w1', {}, { requestId: 'relaunch-1' }), req('w2'));
    expect(s.queue.map((q) => `${q.holder.workflowId}/${q.requestId}`)).toEqual(['w1/launch', 'w1/relaunch-1', 'w2/launch']);
  });

  it("a request from a new execution of the workflow drops the older execution's leases (reclaimed) and queue entries", () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'), req('other'));
    expect(grantedIds(schedule(s, T1))).toEqual(['w1', 'other']);
    expect(leaseOf(s, 'w1').gpus).toEqual([0]);
    // The old run also asked for a second lease, still queued (both GPUs are taken).
    submit(s, req('w1', {}, { requestId: 'relaunch-1' }));
    expect(schedule(s, T1).grants).toHaveLength(0);

    const fresh = req('w1', {}, { holder: holder('w1', 'run-2') });
    expect(enqueue(s, fresh, T2)).toBe('queued');
    expect(s.leases.map((l) => l.holder)).toEqual([holder('other')]);
    expect(s.queue.map((q) => [q.holder.runId, q.requestId])).toEqual([['run-2', 'launch']]);
    expect(s.stats.reclaimed).toBe(1);
    expect(s.stats.released).toBe(0);

    // The GPU the old run held is free for the new one.
    const r = schedule(s, T2);
    expect(r.grants.map((g) => [g.lease.holder.runId, g.lease.host, g.lease.gpus])).toEqual([['run-2', 'a', [0]]]);
  });

  it('a same-id request from the new execution is not a duplicate of the old execution', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'));
    schedule(s, T1);
    expect(enqueue(s, req('w1', {}, { holder: holder('w1', 'run-2') }), T2)).toBe('queued');
    expect(s.leases).toHaveLength(0);
    expect(s.queue).toHaveLength(1);
  });
});

// ------------------------------------------------------------------ schedule

describe('schedule: basics', () => {
  it('grants and refuses nothing before the worker has reported its hosts', () => {
    const s = emptyFleet();
    submit(s, req('w1'), req('huge', { gpus: 99 }));
    expect(schedule(s, T1)).toEqual({ grants: [], refusals: [] });
    expect(s.queue).toHaveLength(2);
    expect(s.stats).toEqual({ granted: 0, released: 0, reclaimed: 0, refused: 0 });
    expect(fleetView(s).queue.map((q) => q.waitingFor)).toEqual(['the worker to report its hosts', 'the worker to report its hosts']);

    setInventory(s, [host('a', 2)], T1);
    const r = schedule(s, T2);
    expect(grantedIds(r)).toEqual(['w1']);
    expect(r.refusals.map((x) => x.holder.workflowId)).toEqual(['huge']);
  });

  it('an empty inventory still counts as reported: requests are refused', () => {
    const s = emptyFleet();
    setInventory(s, [], T0);
    submit(s, req('w1'));
    const r = schedule(s, T1);
    expect(r.refusals).toHaveLength(1);
    expect(r.refusals[0]!.refusal.reason).toContain('(known: none)');
  });

  it('a grant carries the lease token, host, gpus, and both timestamps; the lease its resources', () => {
    const s = fleetOf(host('a', 4, { pricePerHour: 2.5 }));
    expect(enqueue(s, req('w1', { gpus: 2, cpus: 8, memoryGb: 32 }, { priority: 3 }), T0)).toBe('queued');
    const r = schedule(s, T1);
    expect(r.grants).toHaveLength(1);
    const { lease, grant } = r.grants[0]!;
    expect(grant).toEqual({ token: 1, requestId: 'launch', host: 'a', gpus: [0, 1], grantedAt: T1, queuedAt: T0, pricePerHour: 2.5 });
    expect(lease).toEqual({
      token: 1,
      holder: holder('w1'),
      requestId: 'launch',
      host: 'a',
      gpus: [0, 1],
      cpus: 8,
      memoryGb: 32,
      exclusive: false,
      priority: 3,
      queuedAt: T0,
      grantedAt: T1,
      pricePerHour: 2.5,
    });
    expect(s.leases).toEqual([lease]);
    expect(s.queue).toHaveLength(0);
    expect(s.nextToken).toBe(2);
  });

  it('a host without a price gives leases and grants without pricePerHour', () => {
    const s = fleetOf(host('a', 1));
    submit(s, req('w1'));
    const { lease, grant } = schedule(s, T1).grants[0]!;
    expect('pricePerHour' in lease).toBe(false);
    expect('pricePerHour' in grant).toBe(false);
  });

  it('tokens are unique and increasing over the fleet life, also after releases', () => {
    const s = fleetOf(host('a', 1));
    const tokens: number[] = [];
    for (let i = 0; i < 4; i++) {
      submit(s, req(`w${i}`));
      const g = schedule(s, T1).grants;
      expect(g).toHaveLength(1);
      tokens.push(g[0]!.lease.token);
      release(s, `w${i}`);
    }
    expect(tokens).toEqual([1, 2, 3, 4]);
  });

  it('ten 1-GPU requests on a 4-GPU host: four grants with GPUs {0,1,2,3}, the rest queued', () => {
    const s = fleetOf(host('a', 4));
    for (let i = 0; i < 10; i++) submit(s, req(`w${i}`));
    const r = schedule(s, T1);
    expect(grantedIds(r)).toEqual(['w0', 'w1', 'w2', 'w3']);
    expect(r.grants.flatMap((g) => g.lease.gpus).sort()).toEqual([0, 1, 2, 3]);
    expect(s.queue).toHaveLength(6);
    expect(r.refusals).toHaveLength(0);
    // A second pass grants nothing more.
    expect(schedule(s, T1).grants).toHaveLength(0);
    expectConsistent(s);

    // Releasing GPU 2's holder gives exactly GPU 2 to the next in line.
    const two = s.leases.find((l) => l.gpus.includes(2))!;
    releaseLease(s, two.token, two.holder);
    const r2 = schedule(s, T2);
    expect(r2.grants.map((g) => [g.lease.holder.workflowId, g.lease.gpus])).toEqual([['w4', [2]]]);
    expectConsistent(s);
  });

  it('hands out the indices the host lists, not 0..n-1', () => {
    const s = fleetOf(host('a', [1, 3, 6]));
    submit(s, req('w1', { gpus: 2 }), req('w2'));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => g.lease.gpus)).toEqual([[1, 3], [6]]);
  });

  it('never exceeds a host cpus', () => {
    const s = fleetOf(host('a', 8, { cpus: 10 }));
    submit(s, req('w1', { cpus: 6 }), req('w2', { cpus: 6 }), req('w3', { cpus: 4 }));
    const r = schedule(s, T1);
    // w2 does not fit beside w1; w3 (behind it) is held back by w2's reservation of the only host.
    expect(grantedIds(r)).toEqual(['w1']);
    expect(usageOf(s, 'a').freeCpus).toBe(4);
    release(s, 'w1');
    expect(grantedIds(schedule(s, T2))).toEqual(['w2', 'w3']);
    expect(usageOf(s, 'a').freeCpus).toBe(0);
    expectConsistent(s);
  });

  it('never exceeds a host memory', () => {
    const s = fleetOf(host('a', 8, { memoryGb: 100 }), host('b', 8, { memoryGb: 50 }));
    submit(s, req('w1', { memoryGb: 60 }), req('w2', { memoryGb: 60 }), req('w3', { memoryGb: 40 }));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([
      ['w1', 'a'],
      ['w3', 'b'],
    ]);
    expect(s.queue.map((q) => q.holder.workflowId)).toEqual(['w2']);
    expect(usageOf(s, 'a').freeMemoryGb).toBe(40);
    expectConsistent(s);
  });

  it('a cpu-only request takes no GPU', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1', { gpus: 0 }));
    const r = schedule(s, T1);
    expect(r.grants[0]!.lease.gpus).toEqual([]);
    expect(r.grants[0]!.lease.exclusive).toBe(false);
    expect(usageOf(s, 'a').freeGpus).toEqual([0, 1]);
  });
});

describe('schedule: best fit', () => {
  it('takes the host with the fewest GPUs left free', () => {
    const s = fleetOf(host('big', 8), host('mid', 4), host('small', 2));
    submit(s, req('w1', { gpus: 2 }), req('w2', { gpus: 3 }), req('w3', { gpus: 1 }));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([
      ['w1', 'small'],
      ['w2', 'mid'],
      ['w3', 'mid'],
    ]);
  });

  it('GPUs left weigh before CPUs left: a cpu-only job goes to the GPU-less host', () => {
    const s = fleetOf(host('gpu', 4, { cpus: 8 }), host('cpu', 0, { cpus: 128 }));
    submit(s, req('w1', { gpus: 0, cpus: 2 }));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('cpu');
  });

  it('ties on GPUs go to the host with the fewest CPUs left, then the least memory left', () => {
    const s = fleetOf(host('x', 2, { cpus: 64 }), host('y', 2, { cpus: 8 }));
    submit(s, req('w1', { cpus: 4 }));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('y');

    const m = fleetOf(host('x', 2, { memoryGb: 512 }), host('y', 2, { memoryGb: 32 }));
    submit(m, req('w1', { memoryGb: 16 }));
    expect(schedule(m, T1).grants[0]!.lease.host).toBe('y');
  });

  it('full ties go by host name', () => {
    const s = fleetOf(host('zeta', 2), host('alpha', 2), host('mu', 2));
    submit(s, req('w1'));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('alpha');
  });

  it('best fit counts what is free now, not the host size', () => {
    const s = fleetOf(host('a', 4), host('b', 4));
    submit(s, req('w1', { gpus: 3 }));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('a');
    // a has 1 free, b 4: the next 1-GPU job fills a.
    submit(s, req('w2'));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('a');
    submit(s, req('w3'));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('b');
  });

  it('skips hosts whose spec does not fit (gpu type, labels) even when they fit better', () => {
    const s = fleetOf(
      host('small-h100', 1, { gpuType: 'H100' }),
      host('big-a100', 8, { gpuType: 'A100', labels: ['nvme'] }),
      host('mid-a100', 2, { gpuType: 'a100' }),
    );
    submit(s, req('w1', { gpuType: 'A100' }), req('w2', { gpuType: 'a100', labels: ['nvme'] }));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([
      ['w1', 'mid-a100'],
      ['w2', 'big-a100'],
    ]);
  });
});

describe('schedule: order', () => {
  it('FIFO within a priority is by submission time when requests carry it, however they arrive', () => {
    const s = fleetOf(host('a', 1));
    submit(
      s,
      req('second', {}, { submittedAt: '2026-12-01T10:00:02.000Z' }),
      req('first', {}, { submittedAt: '2026-12-01T10:00:01.000Z' }),
      req('third', {}, { submittedAt: '2026-12-01T10:00:03.000Z' }),
      req('urgent', {}, { priority: 1, submittedAt: '2026-12-01T10:00:09.000Z' }),
    );
    expect(queuedIds(s)).toEqual(['urgent', 'first', 'second', 'third']);
  });

  it('higher priority first, FIFO within a priority', () => {
    const s = fleetOf(host('a', 1));
    submit(
      s,
      req('low-1', {}, { priority: 0 }),
      req('high-1', {}, { priority: 5 }),
      req('mid-1', {}, { priority: 1 }),
      req('high-2', {}, { priority: 5 }),
      req('low-2', {}, { priority: 0 }),
      req('neg', {}, { priority: -1 }),
    );
    expect(queuedIds(s)).toEqual(['high-1', 'high-2', 'mid-1', 'low-1', 'low-2', 'neg']);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = schedule(s, T1);
      expect(r.grants).toHaveLength(1);
      const wf = r.grants[0]!.lease.holder.workflowId;
      order.push(wf);
      release(s, wf);
    }
    expect(order).toEqual(['high-1', 'high-2', 'mid-1', 'low-1', 'low-2', 'neg']);
  });

  it('a later higher-priority request overtakes the queue', () => {
    const s = fleetOf(host('a', 1));
    submit(s, req('first'), req('second'));
    expect(grantedIds(schedule(s, T1))).toEqual(['first']);
    submit(s, req('urgent', {}, { priority: 9 }));
    release(s, 'first');
    expect(grantedIds(schedule(s, T2))).toEqual(['urgent']);
  });

  it('queueOrder does not reorder the queue it is given', () => {
    const s = emptyFleet();
    submit(s, req('a', {}, { priority: 0 }), req('b', {}, { priority: 1 }));
    expect(queueOrder(s.queue).map((q) => q.holder.workflowId)).toEqual(['b', 'a']);
    expect(s.queue.map((q) => q.holder.workflowId)).toEqual(['a', 'b']);
  });
});

describe('schedule: whole-host requests', () => {
  it('a request for all of a host GPUs holds it alone: no other lease, not even cpu-only, while held', () => {
    const s = fleetOf(host('a', 4));
    submit(s, req('whole', { gpus: 4 }));
    const r = schedule(s, T1);
    expect(r.grants[0]!.lease.exclusive).toBe(true);
    expect(r.grants[0]!.lease.gpus).toEqual([0, 1, 2, 3]);

    submit(s, req('cpu-only', { gpus: 0 }));
    expect(schedule(s, T1).grants).toHaveLength(0);
    expect(fleetView(s).queue[0]!.waitingFor).toContain('a: held whole by one job');
    expect(usageOf(s, 'a').exclusive).toBe(true);

    release(s, 'whole');
    expect(grantedIds(schedule(s, T2))).toEqual(['cpu-only']);
  });

  it('a whole-host request waits until the host is empty, even of cpu-only jobs', () => {
    const s = fleetOf(host('a', 4));
    submit(s, req('cpu-1', { gpus: 0 }));
    schedule(s, T1);
    submit(s, req('whole', { gpus: 4 }));
    expect(schedule(s, T1).grants).toHaveLength(0);
    expect(fleetView(s).queue[0]!.waitingFor).toContain('a: wants the whole host, 1 job on it');
    release(s, 'cpu-1');
    const r = schedule(s, T2);
    expect(grantedIds(r)).toEqual(['whole']);
    expect(r.grants[0]!.lease.exclusive).toBe(true);
  });

  it('while it waits, later small requests do not start on the host it waits for', () => {
    const s = fleetOf(host('a', 4));
    submit(s, req('cpu-1', { gpus: 0 }));
    schedule(s, T1);
    submit(s, req('whole', { gpus: 4 }), req('cpu-2', { gpus: 0 }), req('gpu-1', { gpus: 1 }));
    expect(schedule(s, T1).grants).toHaveLength(0);
    release(s, 'cpu-1');
    expect(grantedIds(schedule(s, T2))).toEqual(['whole']);
    expect(queuedIds(s)).toEqual(['cpu-2', 'gpu-1']);
  });

  it('a whole-host lease on one host does not block the others', () => {
    const s = fleetOf(host('a', 2), host('b', 4));
    submit(s, req('whole-a', { gpus: 2 }), req('cpu', { gpus: 0 }), req('one', { gpus: 1 }));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => [g.lease.holder.workflowId, g.lease.host, g.lease.exclusive])).toEqual([
      ['whole-a', 'a', true],
      ['cpu', 'b', false],
      ['one', 'b', false],
    ]);
    expectConsistent(s);
  });

  it('asking for 4 GPUs is whole-host on a 4-GPU host but shared on an 8-GPU one', () => {
    const s = fleetOf(host('eight', 8));
    submit(s, req('four', { gpus: 4 }), req('cpu', { gpus: 0 }));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => [g.lease.holder.workflowId, g.lease.exclusive])).toEqual([
      ['four', false],
      ['cpu', false],
    ]);
  });
});

describe('schedule: reservation (no starvation)', () => {
  /** Two 4-GPU hosts; a fully busy, b with 3 of 4 busy; then a 2-GPU job and a stream of 1-GPU ones. */
  function crowded() {
    const s = fleetOf(host('a', 4), host('b', 4));
    for (let i = 1; i <= 7; i++) submit(s, req(`long-${i}`));
    const r = schedule(s, T0);
    expect(r.grants.map((g) => g.lease.host)).toEqual(['a', 'a', 'a', 'a', 'b', 'b', 'b']);
    submit(s, req('big', { gpus: 2 }));
    for (let i = 1; i <= 6; i++) submit(s, req(`small-${i}`));
    return s;
  }
  const onHost = (s: FleetState, h: string) => s.leases.filter((l) => l.host === h).map((l) => l.holder.workflowId);

  it('the blocked head reserves the host nearest to holding it: no later request starts there', () => {
    const s = crowded();
    // b has 1 GPU free; small-1 would fit there, but big (ahead of it) reserves b.
    const r = schedule(s, T1);
    expect(r.grants).toHaveLength(0);
    expect(usageOf(s, 'b').freeGpus).toHaveLength(1);
    const view = fleetView(s).queue;
    expect(view[0]!.workflowId).toBe('big');
    expect(view[0]!.waitingFor).toContain('b: 1 of 4 gpus free');
    expect(view[1]!.workflowId).toBe('small-1');
    expect(view[1]!.waitingFor).toContain('b: reserved for an earlier job');
    expect(view[1]!.waitingFor).toContain('a: 0 of 4 gpus free');
  });

  it('later requests backfill other hosts, never the reserved one; after releases the big job gets it', () => {
    const s = crowded();
    expect(schedule(s, T1).grants).toHaveLength(0);

    // A GPU frees on b: b now has 2 free and the big job takes it at once, before any small one.
    release(s, 'long-5');
    const r = schedule(s, T2);
    expect(grantedIds(r)).toEqual(['big']);
    expect(r.grants[0]!.lease.host).toBe('b');
    expect(queuedIds(s)).toEqual(['small-1', 'small-2', 'small-3', 'small-4', 'small-5', 'small-6']);
    expectConsistent(s);
  });

  it('small jobs start on the other host while the big one waits, and it is not starved', () => {
    const s = crowded();
    expect(schedule(s, T1).grants).toHaveLength(0);
    // A GPU frees on a: both hosts have 1 free. The big job reserves one of them; the first small
    // job may take the other, but never both.
    release(s, 'long-1');
    const r = schedule(s, T2);
    expect(r.grants).toHaveLength(1);
    expect(r.grants[0]!.lease.holder.workflowId).toBe('small-1');
    const reserved = r.grants[0]!.lease.host === 'a' ? 'b' : 'a';
    expect(usageOf(s, reserved).freeGpus).toHaveLength(1);
    // Nothing more starts while only the reserved host has room.
    expect(schedule(s, T2).grants).toHaveLength(0);

    // One more GPU frees on the reserved host: the big job gets it, not a small one.
    const victim = s.leases.find((l) => l.host === reserved && l.holder.workflowId.startsWith('long-'))!;
    releaseLease(s, victim.token, victim.holder);
    const r2 = schedule(s, T2);
    expect(r2.grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([['big', reserved]]);
    expect(r2.grants[0]!.lease.gpus).toHaveLength(2);
    expectConsistent(s);
  });

  it('under a steady stream of small jobs, the big one starts within a bounded number of releases', () => {
    const s = crowded();
    let n = 100;
    let bigAt: number | undefined;
    for (let step = 0; step < 20 && bigAt === undefined; step++) {
      const r = schedule(s, T1);
      expectConsistent(s);
      if (r.grants.some((g) => g.lease.holder.workflowId === 'big')) bigAt = step;
      // Keep the small queue topped up, and end the oldest running small or long job.
      submit(s, req(`small-${n++}`));
      const oldest = s.leases.filter((l) => l.holder.workflowId !== 'big').sort((x, y) => x.token - y.token)[0];
      if (oldest) releaseLease(s, oldest.token, oldest.holder);
    }
    expect(bigAt).toBeDefined();
    expect(bigAt!).toBeLessThanOrEqual(4);
  });

  it('without a blocked request ahead, small jobs take any free room', () => {
    const s = fleetOf(host('a', 4), host('b', 4));
    for (let i = 1; i <= 7; i++) submit(s, req(`long-${i}`));
    schedule(s, T0);
    submit(s, req('small-1'));
    expect(grantedIds(schedule(s, T1))).toEqual(['small-1']);
    expect(onHost(s, 'b')).toContain('small-1');
  });

  it('higher-priority requests are placed before the reservation is made', () => {
    const s = fleetOf(host('a', 4));
    submit(s, req('long-1', { gpus: 3 }));
    schedule(s, T0);
    submit(s, req('big', { gpus: 2 }, { priority: 0 }), req('urgent', { gpus: 1 }, { priority: 1 }));
    expect(grantedIds(schedule(s, T1))).toEqual(['urgent']);
  });

  it('a lower-priority request behind the blocked one is held back from the reserved host too', () => {
    const s = fleetOf(host('a', 4));
    submit(s, req('long-1', { gpus: 3 }));
    schedule(s, T0);
    submit(s, req('big', { gpus: 2 }, { priority: 1 }), req('low', { gpus: 1 }, { priority: 0 }));
    expect(schedule(s, T1).grants).toHaveLength(0);
  });

  it('a drained host is never the one reserved, however empty', () => {
    const s = fleetOf(host('a', 4), host('b', 4));
    setDrained(s, 'a', true, T0);
    submit(s, req('long', { gpus: 3 }));
    expect(schedule(s, T0).grants[0]!.lease.host).toBe('b');
    // big waits for b (a is drained, though all free); small may not take b's last GPU.
    submit(s, req('big', { gpus: 2 }), req('small', { gpus: 1 }));
    expect(schedule(s, T1).grants).toHaveLength(0);
    expect(fleetView(s).queue[1]!.waitingFor).toBe('1 gpu, 1 cpu, 1 GB (a: drained | b: reserved for an earlier job)');
  });

  it('a blocked request whose hosts are all drained reserves nothing', () => {
    const s = fleetOf(host('a', 4), host('b', 4));
    setDrained(s, 'a', true, T0);
    submit(s, req('long', { gpus: 3 }, { hosts: ['b'] }));
    schedule(s, T0);
    // pinned waits on drained a; the next request may take b's last GPU.
    submit(s, req('pinned', { gpus: 2 }, { hosts: ['a'] }), req('small', { gpus: 1 }));
    expect(grantedIds(schedule(s, T1))).toEqual(['small']);
    expect(leaseOf(s, 'small').host).toBe('b');
  });
});

describe('schedule: pins and avoid', () => {
  it('a pinned request goes only to its host, even when another fits better', () => {
    const s = fleetOf(host('a', 8), host('b', 1));
    submit(s, req('w1', {}, { hosts: ['a'] }));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('a');
  });

  it('a pinned request waits for its host while others start elsewhere', () => {
    const s = fleetOf(host('a', 1), host('b', 1));
    submit(s, req('on-a', {}, { hosts: ['a'] }));
    schedule(s, T0);
    submit(s, req('pinned', {}, { hosts: ['a'] }), req('free'));
    const r = schedule(s, T1);
    expect(grantedIds(r)).toEqual(['free']);
    expect(leaseOf(s, 'free').host).toBe('b');
    expect(queuedIds(s)).toEqual(['pinned']);
    release(s, 'on-a');
    expect(schedule(s, T2).grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([['pinned', 'a']]);
  });

  it('a request with several allowed hosts may take any of them, and no other', () => {
    const s = fleetOf(host('a', 1), host('b', 1), host('c', 1));
    submit(s, req('w1', {}, { hosts: ['c', 'b'] }), req('w2', {}, { hosts: ['c', 'b'] }), req('w3', {}, { hosts: ['c', 'b'] }));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => g.lease.host).sort()).toEqual(['b', 'c']);
    expect(queuedIds(s)).toEqual(['w3']);
    expect(usageOf(s, 'a').leases).toBe(0);
  });

  it('avoid keeps a request off a host even when it fits best', () => {
    const s = fleetOf(host('a', 1), host('b', 8));
    submit(s, req('w1', {}, { avoid: ['a'] }));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe('b');
  });

  it('avoiding every candidate is a refusal that says so', () => {
    const s = fleetOf(host('a', 1), host('b', 1));
    submit(s, req('w1', {}, { avoid: ['a', 'b'] }));
    const r = schedule(s, T1);
    expect(r.refusals[0]!.refusal.reason).toBe('no host of the fleet can take it: any host except a, b (known: a, b)');
  });

  it('a pin to a host the fleet does not know is refused, naming the hosts it knows', () => {
    const s = fleetOf(host('a', 1), host('b', 1));
    submit(s, req('w1', {}, { hosts: ['ghost'] }), req('w2', {}, { hosts: ['ghost', 'phantom'] }));
    const r = schedule(s, T1);
    expect(r.refusals.map((x) => x.refusal.reason)).toEqual([
      'no host of the fleet can take it: host ghost (known: a, b)',
      'no host of the fleet can take it: hosts ghost, phantom (known: a, b)',
    ]);
  });
});

describe('schedule: refusals', () => {
  it('a request no host could ever hold is refused with each host shortfall, and leaves the queue', () => {
    const s = fleetOf(host('a', 2), host('b', 1));
    submit(s, req('huge', { gpus: 3 }), req('ok'));
    const r = schedule(s, T1);
    expect(r.refusals).toEqual([
      {
        holder: holder('huge'),
        refusal: { requestId: 'launch', reason: 'no host of the fleet fits 3 gpus, 1 cpu, 1 GB: a: needs 3 gpus, has 2 | b: needs 3 gpus, has 1' },
      },
    ]);
    expect(grantedIds(r)).toEqual(['ok']);
    expect(s.queue).toHaveLength(0);
    expect(s.stats.refused).toBe(1);
    // It is not refused again.
    expect(schedule(s, T2).refusals).toHaveLength(0);
    expect(s.stats.refused).toBe(1);
  });

  it('names every kind of shortfall: cpus, memory, gpu type, labels', () => {
    const s = fleetOf(host('a', 2, { cpus: 8, memoryGb: 32, gpuType: 'A100', labels: ['x'] }), host('b', 2, { cpus: 16, memoryGb: 64 }));
    submit(s, req('w1', { gpus: 1, gpuType: 'H100', cpus: 12, memoryGb: 48, labels: ['nvme', 'ib'] }));
    const reason = schedule(s, T1).refusals[0]!.refusal.reason;
    expect(reason).toBe(
      'no host of the fleet fits 1 gpu (H100), 12 cpus, 48 GB, labels nvme, ib: ' +
        'a: needs gpu type H100, has A100; needs 12 cpus, has 8; needs 48 GB memory, has 32; lacks labels nvme, ib | ' +
        'b: needs gpu type H100, has no gpuType listed; lacks labels nvme, ib',
    );
  });

  it('a request that fits one host, however busy, is not refused', () => {
    const s = fleetOf(host('a', 2), host('b', 8));
    submit(s, req('holder-b', { gpus: 8 }));
    schedule(s, T0);
    submit(s, req('w1', { gpus: 5 }));
    const r = schedule(s, T1);
    expect(r.refusals).toHaveLength(0);
    expect(queuedIds(s)).toEqual(['w1']);
    expect(neverFits(s, s.queue[0]!)).toBeUndefined();
  });

  it('a refused request ahead takes no reservation: those behind it still start', () => {
    const s = fleetOf(host('a', 1));
    submit(s, req('huge', { gpus: 2 }, { priority: 9 }), req('w1'));
    const r = schedule(s, T1);
    expect(r.refusals.map((x) => x.holder.workflowId)).toEqual(['huge']);
    expect(grantedIds(r)).toEqual(['w1']);
  });
});

// ------------------------------------------------------------------ host conditions

describe('host conditions', () => {
  it('conditionOf ranks removed over lost over drained', () => {
    const h = { spec: host('a', 1), drained: true, lost: true, removed: true };
    expect(conditionOf(h)).toBe('removed');
    expect(conditionOf({ ...h, removed: false })).toBe('lost');
    expect(conditionOf({ ...h, removed: false, lost: false })).toBe('drained');
    expect(conditionOf({ ...h, removed: false, lost: false, drained: false })).toBe('ok');
  });

  it('a drained host keeps its leases, takes no new ones, and a request pinned to it waits', () => {
    const s = fleetOf(host('a', 2), host('b', 2));
    submit(s, req('running', {}, { hosts: ['a'] }));
    schedule(s, T0);
    expect(setDrained(s, 'a', true, T1)).toBe(true);
    expect(s.leases).toHaveLength(1);
    submit(s, req('pinned', {}, { hosts: ['a'] }), req('any'));
    const r = schedule(s, T1);
    expect(r.refusals).toHaveLength(0);
    expect(r.grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([['any', 'b']]);
    expect(queuedIds(s)).toEqual(['pinned']);
    const view = fleetView(s);
    expect(view.queue[0]!.waitingFor).toContain('a: drained');
    expect(view.hosts.find((h) => h.name === 'a')).toMatchObject({ condition: 'drained', note: 'drained by hand', since: T1, leases: 1 });

    expect(setDrained(s, 'a', false, T2)).toBe(true);
    expect(grantedIds(schedule(s, T2))).toEqual(['pinned']);
    const a = fleetView(s).hosts.find((h) => h.name === 'a')!;
    expect(a.condition).toBe('ok');
    expect(a.note).toBeUndefined();
    expect(a.since).toBeUndefined();
  });

  it('setDrained on an unknown host does nothing', () => {
    const s = fleetOf(host('a', 1));
    expect(setDrained(s, 'nope', true, T0)).toBe(false);
    expect(Object.keys(s.hosts)).toEqual(['a']);
  });

  it('a lost host takes no new leases until it answers; a request whose only host is lost waits', () => {
    const s = fleetOf(host('a', 2));
    expect(markLost(s, 'a', 'ssh timed out', T1)).toBe(true);
    expect(markLost(s, 'a', 'again', T2)).toBe(false);
    expect(s.hosts.a!.note).toBe('ssh timed out');
    expect(s.hosts.a!.since).toBe(T1);
    expect(markLost(s, 'nope', 'x', T1)).toBe(false);

    submit(s, req('w1'));
    const r = schedule(s, T1);
    expect(r).toEqual({ grants: [], refusals: [] });
    expect(fleetView(s).queue[0]!.waitingFor).toContain('a: lost');
    expect(fleetView(s).hosts[0]).toMatchObject({ condition: 'lost', note: 'ssh timed out' });

    expect(markAnswering(s, 'a')).toBe(true);
    expect(markAnswering(s, 'a')).toBe(false);
    expect(s.hosts.a!.note).toBeUndefined();
    expect(grantedIds(schedule(s, T2))).toEqual(['w1']);
  });

  it('a lost host that was also drained stays drained once it answers', () => {
    const s = fleetOf(host('a', 2));
    setDrained(s, 'a', true, T0);
    markLost(s, 'a', 'unreachable', T1);
    expect(markAnswering(s, 'a')).toBe(true);
    expect(conditionOf(s.hosts.a!)).toBe('drained');
    expect(s.hosts.a!.note).toBe('drained by hand');
    submit(s, req('w1'));
    expect(schedule(s, T2).grants).toHaveLength(0);
  });

  it('a lost host keeps its leases', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'));
    schedule(s, T0);
    markLost(s, 'a', 'gone quiet', T1);
    expect(s.leases.map((l) => l.host)).toEqual(['a']);
    expect(fleetView(s).hosts[0]!.gpus.busy).toEqual([0]);
  });

  it('a host gone from the inventory keeps its running leases, gets no new grants, and is forgotten once empty', () => {
    const s = fleetOf(host('a', 2), host('b', 2));
    submit(s, req('on-a', {}, { hosts: ['a'] }));
    schedule(s, T0);
    setInventory(s, [host('b', 2)], T1);
    expect(s.hosts.a).toBeDefined();
    expect(conditionOf(s.hosts.a!)).toBe('removed');
    expect(s.hosts.a!.note).toBe('not in hosts.yaml any more');
    expect(s.hosts.a!.since).toBe(T1);
    expect(s.leases.map((l) => [l.holder.workflowId, l.host])).toEqual([['on-a', 'a']]);

    // New requests go elsewhere (a has a free GPU and is the better fit, but it is gone).
    submit(s, req('w1'), req('w2'), req('w3'));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => g.lease.host)).toEqual(['b', 'b']);
    expect(usageOf(s, 'a').leases).toBe(1);
    expect(queuedIds(s)).toEqual(['w3']);

    // A later inventory without a keeps it while its lease runs; once empty it is forgotten.
    setInventory(s, [host('b', 2)], T2);
    expect(s.hosts.a!.since).toBe(T1);
    release(s, 'on-a');
    setInventory(s, [host('b', 2)], T2);
    expect(s.hosts.a).toBeUndefined();
    expect(fleetView(s).hosts.map((h) => h.name)).toEqual(['b']);
  });

  it('a host gone from the inventory with nothing on it is forgotten at once', () => {
    const s = fleetOf(host('a', 2), host('b', 2));
    setInventory(s, [host('b', 2)], T1);
    expect(Object.keys(s.hosts)).toEqual(['b']);
  });

  it('a removed host that comes back takes leases again', () => {
    const s = fleetOf(host('a', 2), host('b', 2));
    submit(s, req('on-a', {}, { hosts: ['a'] }));
    schedule(s, T0);
    setInventory(s, [host('b', 2)], T1);
    setInventory(s, [host('a', 2), host('b', 2)], T2);
    expect(conditionOf(s.hosts.a!)).toBe('ok');
    expect(s.hosts.a!.note).toBeUndefined();
    submit(s, req('w1', {}, { hosts: ['a'] }));
    expect(schedule(s, T2).grants.map((g) => [g.lease.host, g.lease.gpus])).toEqual([['a', [1]]]);
  });

  it('a request whose only candidate is removed is refused; one whose only candidate is drained or lost waits', () => {
    const s = fleetOf(host('a', 2), host('d', 2), host('l', 2));
    submit(s, req('keep-a', {}, { hosts: ['a'] }));
    schedule(s, T0);
    setInventory(s, [host('d', 2), host('l', 2)], T1);
    setDrained(s, 'd', true, T1);
    markLost(s, 'l', 'x', T1);
    submit(s, req('to-a', {}, { hosts: ['a'] }), req('to-d', {}, { hosts: ['d'] }), req('to-l', {}, { hosts: ['l'] }));
    const r = schedule(s, T1);
    expect(r.grants).toHaveLength(0);
    expect(r.refusals.map((x) => [x.holder.workflowId, x.refusal.reason])).toEqual([['to-a', 'no host of the fleet can take it: host a (known: d, l)']]);
    expect(queuedIds(s)).toEqual(['to-d', 'to-l']);
  });

  it('an updated spec takes effect for new grants', () => {
    const s = fleetOf(host('a', 1));
    submit(s, req('w1', { gpus: 2 }));
    setInventory(s, [host('a', 2)], T1);
    expect(schedule(s, T1).grants[0]!.lease.gpus).toEqual([0, 1]);
  });
});

// ------------------------------------------------------------------ releases and stats

describe('releases', () => {
  it('releaseLease needs both the right token and the right holder', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'), req('w2'));
    schedule(s, T0);
    const l1 = leaseOf(s, 'w1');
    const l2 = leaseOf(s, 'w2');
    expect(releaseLease(s, l1.token, holder('w2'))).toBeUndefined();
    expect(releaseLease(s, l1.token, holder('w1', 'run-2'))).toBeUndefined();
    expect(releaseLease(s, 999, holder('w1'))).toBeUndefined();
    expect(releaseLease(s, l2.token, holder('w1'))).toBeUndefined();
    expect(s.leases).toHaveLength(2);
    expect(s.stats.released).toBe(0);

    expect(releaseLease(s, l1.token, holder('w1'))).toEqual(l1);
    expect(s.leases).toEqual([l2]);
    expect(s.stats.released).toBe(1);
    expect(releaseLease(s, l1.token, holder('w1'))).toBeUndefined();
    expect(s.stats.released).toBe(1);
  });

  it('releaseHolder ends all of a holder leases and its queue entries, and nothing of others', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'), req('w1', {}, { requestId: 'second' }), req('w2'), req('w1', {}, { requestId: 'third' }));
    schedule(s, T0);
    expect(s.leases.map((l) => `${l.holder.workflowId}/${l.requestId}`)).toEqual(['w1/launch', 'w1/second']);
    // A queue entry from another run of w1 is not this holder's.
    expect(releaseHolder(s, holder('w1', 'run-9'))).toBe(0);
    expect(s.leases).toHaveLength(2);

    expect(releaseHolder(s, holder('w1'))).toBe(2);
    expect(s.leases).toHaveLength(0);
    expect(s.queue.map((q) => q.holder.workflowId)).toEqual(['w2']);
    expect(s.stats).toMatchObject({ released: 2, reclaimed: 0 });
    expect(grantedIds(schedule(s, T1))).toEqual(['w2']);
  });

  it('releaseHolder of a holder only queued returns 0 and still drops its entry', () => {
    const s = emptyFleet();
    submit(s, req('w1'));
    expect(releaseHolder(s, holder('w1'))).toBe(0);
    expect(s.queue).toHaveLength(0);
  });

  it('releaseHolder(…, true) counts the leases as reclaimed', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'), req('w1', {}, { requestId: 'b' }));
    schedule(s, T0);
    expect(releaseHolder(s, holder('w1'), true)).toBe(2);
    expect(s.stats).toEqual({ granted: 2, released: 0, reclaimed: 2, refused: 0 });
  });

  it('stats count grants, releases, reclamations and refusals', () => {
    const s = fleetOf(host('a', 2));
    submit(s, req('w1'), req('w2'), req('w3'), req('huge', { gpus: 9 }));
    schedule(s, T0);
    release(s, 'w1');
    schedule(s, T1);
    releaseHolder(s, holder('w2'), true);
    enqueue(s, req('w3', {}, { holder: holder('w3', 'run-2') }), T1);
    schedule(s, T2);
    expect(s.stats).toEqual({ granted: 4, released: 1, reclaimed: 2, refused: 1 });
    expect(fleetView(s).stats).toEqual(s.stats);
  });
});

// ------------------------------------------------------------------ views and helpers

describe('fleetView', () => {
  it('lists the queue in scheduling order with 1-based positions', () => {
    const s = emptyFleet();
    submit(s, req('w1', {}, { priority: 0 }), req('w2', {}, { priority: 2, hosts: ['a'] }), req('w3', {}, { priority: 0 }));
    const q = fleetView(s).queue;
    expect(q.map((e) => [e.position, e.workflowId, e.priority])).toEqual([
      [1, 'w2', 2],
      [2, 'w1', 0],
      [3, 'w3', 0],
    ]);
    expect(q[0]!.hosts).toEqual(['a']);
    expect('hosts' in q[1]!).toBe(false);
    expect(q[0]).toMatchObject({ requestId: 'launch', queuedAt: T0, resources: { gpus: 1, cpus: 1, memoryGb: 1 } });
    expect('inventoryAt' in fleetView(s)).toBe(false);
  });

  it('waitingFor names what it asks for and each host shortfall', () => {
    const s = fleetOf(host('a', 4, { cpus: 8, memoryGb: 32 }), host('b', 1));
    submit(s, req('fill', { gpus: 3, cpus: 6, memoryGb: 30 }, { hosts: ['a'] }));
    schedule(s, T0);
    submit(s, req('w1', { gpus: 2, cpus: 4, memoryGb: 4 }));
    schedule(s, T1);
    expect(fleetView(s).queue[0]!.waitingFor).toBe('2 gpus, 4 cpus, 4 GB (a: 1 of 4 gpus free, 2 of 8 cpus free, 2 of 32 GB free | b: needs 2 gpus, has 1)');
  });

  it('waitingFor with no candidate host says so', () => {
    const s = fleetOf(host('a', 1));
    submit(s, req('w1', {}, { avoid: ['a'] }));
    expect(fleetView(s).queue[0]!.waitingFor).toBe('1 gpu, 1 cpu, 1 GB (no host)');
  });

  it('shows each host with its busy GPUs sorted, busy cpus and memory, and lease count', () => {
    const s = fleetOf(host('b', 4, { cpus: 16, memoryGb: 64, gpuType: 'A100', labels: ['nvme'], pricePerHour: 3 }), host('a', 2));
    submit(s, req('w1', { gpus: 2, cpus: 4, memoryGb: 10 }, { hosts: ['b'] }), req('w2', { gpus: 1, cpus: 2, memoryGb: 5 }, { hosts: ['b'] }));
    schedule(s, T0);
    release(s, 'w1');
    submit(s, req('w3', { gpus: 2, cpus: 1, memoryGb: 1 }, { hosts: ['b'] }));
    schedule(s, T1);
    // w2 holds GPU 2; w3 got 0 and 1 (listed in lease order 2, 0, 1).
    expect(s.leases.flatMap((l) => l.gpus)).toEqual([2, 0, 1]);
    const v = fleetView(s);
    expect(v.hosts.map((h) => h.name)).toEqual(['a', 'b']);
    expect(v.hosts[1]).toEqual({
      name: 'b',
      condition: 'ok',
      gpus: { total: 4, busy: [0, 1, 2] },
      cpus: { total: 16, busy: 3 },
      memoryGb: { total: 64, busy: 6 },
      gpuType: 'A100',
      labels: ['nvme'],
      pricePerHour: 3,
      leases: 2,
    });
    expect(v.hosts[0]).toEqual({
      name: 'a',
      condition: 'ok',
      gpus: { total: 2, busy: [] },
      cpus: { total: 64, busy: 0 },
      memoryGb: { total: 256, busy: 0 },
      labels: [],
      leases: 0,
    });
    expect(v.leases).toHaveLength(2);
    expect(v.inventoryAt).toBe(T0);
  });

  it('sorts busy GPU indices numerically, not as strings', () => {
    const s = fleetOf(host('a', 12));
    submit(s, req('w1', { gpus: 10 }), req('w2', { gpus: 2 }));
    schedule(s, T0);
    release(s, 'w1');
    submit(s, req('w3', { gpus: 3 }));
    schedule(s, T1);
    expect(s.leases.flatMap((l) => l.gpus)).toEqual([10, 11, 0, 1, 2]);
    expect(fleetView(s).hosts[0]!.gpus.busy).toEqual([0, 1, 2, 10, 11]);
  });
});

describe('candidatesOf', () => {
  it('by default: every host but "local", sorted', () => {
    const s = fleetOf(host('zeta', 1), host(LOCAL_HOST, 1), host('alpha', 1));
    expect(candidatesOf(s, req('w'))).toEqual(['alpha', 'zeta']);
  });

  it('by default: "local" when it is the only host', () => {
    const s = fleetOf(host(LOCAL_HOST, 1));
    expect(candidatesOf(s, req('w'))).toEqual([LOCAL_HOST]);
    submit(s, req('w'));
    expect(schedule(s, T1).grants[0]!.lease.host).toBe(LOCAL_HOST);
  });

  it('by default: "local" when every remote host is removed', () => {
    const s = fleetOf(host(LOCAL_HOST, 1), host('a', 1));
    submit(s, req('on-a', {}, { hosts: ['a'] }));
    schedule(s, T0);
    setInventory(s, [host(LOCAL_HOST, 1)], T1);
    expect(s.hosts.a).toBeDefined();
    expect(candidatesOf(s, req('w'))).toEqual([LOCAL_HOST]);
  });

  it('a default request never lands on "local" when a remote host exists, even a busy one', () => {
    const s = fleetOf(host(LOCAL_HOST, 8), host('a', 1));
    submit(s, req('w1'), req('w2'));
    const r = schedule(s, T1);
    expect(r.grants.map((g) => g.lease.host)).toEqual(['a']);
    expect(queuedIds(s)).toEqual(['w2']);
  });

  it('a pin to "local" is honoured with remote hosts present', () => {
    const s = fleetOf(host(LOCAL_HOST, 1), host('a', 1));
    expect(candidatesOf(s, req('w', {}, { hosts: [LOCAL_HOST] }))).toEqual([LOCAL_HOST]);
  });

  it('drops unknown, removed and avoided hosts; keeps drained and lost ones', () => {
    const s = fleetOf(host('a', 1), host('b', 1), host('c', 1), host('d', 1));
    submit(s, req('on-c', {}, { hosts: ['c'] }));
    schedule(s, T0);
    setInventory(s, [host('a', 1), host('b', 1), host('d', 1)], T1);
    setDrained(s, 'a', true, T1);
    markLost(s, 'b', 'x', T1);
    expect(candidatesOf(s, req('w', {}, { hosts: ['d', 'c', 'b', 'a', 'ghost'], avoid: ['d'] }))).toEqual(['a', 'b']);
    expect(candidatesOf(s, req('w'))).toEqual(['a', 'b', 'd']);
  });
});

describe('helpers', () => {
  it('unmetBy is empty for a host that could hold the request, and lists each lack otherwise', () => {
    const spec = host('a', 2, { cpus: 4, memoryGb: 8, gpuType: 'A100', labels: ['x'] });
    expect(unmetBy({ gpus: 2, cpus: 4, memoryGb: 8, gpuType: 'a100', labels: ['x'] }, spec)).toEqual([]);
    expect(unmetBy({ gpus: 0, cpus: 1, memoryGb: 1, gpuType: 'H100' }, spec)).toEqual([]);
    expect(unmetBy({ gpus: 1, cpus: 5, memoryGb: 9, labels: ['x', 'y'] }, spec)).toEqual(['needs 5 cpus, has 4', 'needs 9 GB memory, has 8', 'lacks label y']);
    expect(unmetBy({ gpus: 1, gpuType: 'A100', cpus: 1, memoryGb: 1 }, host('cpu', 0))).toEqual(['needs 1 gpu, has 0']);
  });

  it('describeResources', () => {
    expect(describeResources({ gpus: 1, cpus: 1, memoryGb: 2 })).toBe('1 gpu, 1 cpu, 2 GB');
    expect(describeResources({ gpus: 0, gpuType: 'A100', cpus: 8, memoryGb: 2, labels: ['a', 'b'] })).toBe('0 gpus, 8 cpus, 2 GB, labels a, b');
    expect(describeResources({ gpus: 2, gpuType: 'A100', cpus: 8, memoryGb: 2 })).toBe('2 gpus (A100), 8 cpus, 2 GB');
  });

  it('leaseCost prices the hours held, rounded to 4 decimals', () => {
    expect(leaseCost(undefined, T0, T1)).toBeUndefined();
    expect(leaseCost(10, '2025-01-01T00:00:00Z', '2025-01-01T01:30:00Z')).toBe(15);
    expect(leaseCost(1, '2025-01-01T00:00:00Z', '2025-01-01T00:00:01Z')).toBe(0.0003);
    expect(leaseCost(2.5, '2025-01-01T00:00:00Z', '2025-01-01T00:20:00Z')).toBe(0.8333);
    expect(leaseCost(0, T0, T2)).toBe(0);
    // A clock that ran backwards costs nothing rather than a negative amount.
    expect(leaseCost(10, T2, T0)).toBe(0);
  });

  it('fleetWorkflowId is per task queue', () => {
    expect(fleetWorkflowId('orbit')).toBe('orbit-fleet-orbit');
    expect(fleetWorkflowId('a')).not.toBe(fleetWorkflowId('b'));
  });
});

// ------------------------------------------------------------------ randomized safety and liveness

const rng = seededRandom;

describe('randomized', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: no overlap or overcommit ever; every request is granted or refused in the end`, () => {
      const rand = rng(seed);
      const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
      const specs = [host('h1', 2, { cpus: 16, memoryGb: 64 }), host('h2', 4, { cpus: 32, memoryGb: 128 }), host('h3', 8, { cpus: 64, memoryGb: 256 }), host('cpu', 0, { cpus: 32, memoryGb: 64 })];
      const s = fleetOf(...specs);
      const asked = new Set<string>();
      const done = new Set<string>();
      let n = 0;
      const check = (r: ScheduleResult) => {
        for (const { lease, grant } of r.grants) {
          const q = lease.holder.workflowId;
          expect(done.has(q)).toBe(false);
          done.add(q);
          expect(conditionOf(s.hosts[lease.host]!)).toBe('ok');
          expect(grant.gpus).toEqual(lease.gpus);
          expect(lease.exclusive).toBe(lease.gpus.length > 0 && lease.gpus.length === s.hosts[lease.host]!.spec.gpus.length);
        }
        for (const { holder: h, refusal } of r.refusals) {
          expect(done.has(h.workflowId)).toBe(false);
          done.add(h.workflowId);
          expect(refusal.reason).toMatch(/^no host of the fleet/);
        }
        expectConsistent(s);
      };
      for (let step = 0; step < 300; step++) {
        const x = rand();
        if (x < 0.45) {
          const wf = `w${n++}`;
          asked.add(wf);
          const pin = rand() < 0.15 ? { hosts: [`h${int(1, 3)}`] } : {};
          const avoid = rand() < 0.1 ? { avoid: [`h${int(1, 3)}`] } : {};
          submit(s, req(wf, { gpus: int(0, 9) === 9 ? 10 : int(0, 4), cpus: int(1, 24), memoryGb: int(1, 96) }, { priority: int(0, 2), ...pin, ...avoid }));
        } else if (x < 0.85 && s.leases.length) {
          const l = s.leases[int(0, s.leases.length - 1)]!;
          expect(releaseLease(s, l.token, l.holder)).toBeDefined();
        } else if (x < 0.9) {
          setDrained(s, `h${int(1, 3)}`, rand() < 0.5, T1);
        } else if (x < 0.95) {
          const name = `h${int(1, 3)}`;
          if (rand() < 0.5) markLost(s, name, 'x', T1);
          else markAnswering(s, name);
        }
        check(schedule(s, T1));
      }
      // Heal the fleet and let everything run out: the queue must drain.
      for (const name of ['h1', 'h2', 'h3']) {
        setDrained(s, name, false, T2);
        markAnswering(s, name);
      }
      for (let i = 0; i < 1000 && (s.queue.length || s.leases.length); i++) {
        check(schedule(s, T2));
        const l = s.leases[0];
        if (l) releaseLease(s, l.token, l.holder);
      }
      expect(s.queue).toHaveLength(0);
      expect(s.leases).toHaveLength(0);
      expect(done).toEqual(asked);
      expect(s.stats.granted + s.stats.refused).toBe(asked.size);
    });
  }
});

describe('a request for a host the fleet has not seen', () => {
  it('waits for a view of the hosts newer than itself before it is refused, and is placed if that view has the host', () => {
    const s = fleetOf(host('a', 2));
    expect(enqueue(s, req('new', {}, { hosts: ['b'] }), T1)).toBe('queued');
    expect(enqueue(s, req('never', { gpus: 9 }), T1)).toBe('queued');
    const before = schedule(s, T1);
    expect([before.grants.length, before.refusals.length, s.queue.length]).toEqual([0, 0, 2]);
    // The worker that serves b reports it: the first is placed there, the second refused on that newer view.
    setInventory(s, [host('a', 2), host('b', 2)], T2);
    const after = schedule(s, T2);
    expect(after.grants.map((g) => [g.lease.holder.workflowId, g.lease.host])).toEqual([['new', 'b']]);
    expect(after.refusals.map((r) => r.holder.workflowId)).toEqual(['never']);
    expect(after.refusals[0]!.refusal.reason).toBe('no host of the fleet fits 9 gpus, 1 cpu, 1 GB: a: needs 9 gpus, has 2 | b: needs 9 gpus, has 2');
  });
});

describe('what a host says about itself', () => {
  it('a lost host drained by hand keeps saying it is lost until it answers, then says drained', () => {
    const s = fleetOf(host('a', 2));
    markLost(s, 'a', 'run r found it lost', T1);
    setDrained(s, 'a', true, T2);
    expect(fleetView(s).hosts[0]).toMatchObject({ condition: 'lost', note: 'run r found it lost', since: T1 });
    markAnswering(s, 'a');
    expect(fleetView(s).hosts[0]).toMatchObject({ condition: 'drained', note: 'drained by hand' });
    setDrained(s, 'a', false, T2);
    expect(fleetView(s).hosts[0]).toMatchObject({ condition: 'ok' });
    expect(fleetView(s).hosts[0]!.note).toBeUndefined();
  });
});
