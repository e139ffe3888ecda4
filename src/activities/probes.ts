/**
 * The probes of a worker's monitors, one command per host per poll interval. Every monitor of a run on
 * a host subscribes to that host's HostProbes; a timer sends one batched probe (ShellHost.probeMany)
 * for all of them every interval (the shortest subscriber's pollIntervalMs), one batch in flight at a
 * time, and hands each monitor its run's answer. When the host does not answer, every subscriber gets
 * the same error at once: all its runs become unreachable together.
 *
 * A subscriber's next() gives the newest answer it has not seen yet, or waits for the next batch; so
 * a monitor busy syncing misses nothing, and a new one gets its first answer within one interval.
 */
import type { Probe } from '../common/activities';
import type { ShellHost } from '../hosts/shell-host';

/** How long the first batch of an idle host waits for the monitors that start with it. */
const GATHER_MS = 50;

export interface ProbeSubscription {
  /** The newest probe of the run that this subscriber has not seen, waiting for the next batch if there is none. */
  next(signal?: AbortSignal): Promise<Probe>;
  /** No more probes for this subscriber; the host's timer stops with its last subscriber. */
  close(): void;
}

interface Subscriber {
  runId: string;
  taskLogFile: string;
  pollIntervalMs: number;
  probeTimeoutMs: number;
  /** An answer (or the batch's failure) not handed out yet. */
  unseen?: { probe: Probe } | { error: Error };
  waiter?: { resolve: (p: Probe) => void; reject: (e: Error) => void };
}

export class HostProbes {
  private readonly subscribers = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private lastStart = 0;
  /** Batches sent, and how many of them failed: for the worker's own accounting and tests. */
  readonly counts = { batches: 0, failed: 0 };

  constructor(private readonly host: ShellHost) {}

  subscribe(run: { runId: string; taskLogFile: string; pollIntervalMs: number; probeTimeoutMs: number }): ProbeSubscription {
    const sub: Subscriber = { ...run };
    this.subscribers.add(sub);
    this.schedule();
    return {
      next: (signal) => this.next(sub, signal),
      close: () => {
        this.subscribers.delete(sub);
        sub.waiter?.reject(new Error('probe subscription closed'));
        sub.waiter = undefined;
        if (this.subscribers.size === 0 && this.timer) {
          clearTimeout(this.timer);
          this.timer = undefined;
        }
      },
    };
  }

  get size(): number {
    return this.subscribers.size;
  }

  private next(sub: Subscriber, signal?: AbortSignal): Promise<Probe> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const unseen = sub.unseen;
    sub.unseen = undefined;
    if (unseen) return 'probe' in unseen ? Promise.resolve(unseen.probe) : Promise.reject(unseen.error);
    return new Promise<Probe>((resolve, reject) => {
      const onAbort = () => {
        sub.waiter = undefined;
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      sub.waiter = {
        resolve: (p) => (signal?.removeEventListener('abort', onAbort), resolve(p)),
        reject: (e) => (signal?.removeEventListener('abort', onAbort), reject(e)),
      };
      this.schedule();
    });
  }

  /** Arms the timer for the next batch: one interval after the last one started (GATHER_MS when the host was idle). */
  private schedule(): void {
    if (this.timer || this.inFlight || this.subscribers.size === 0) return;
    const interval = Math.min(...[...this.subscribers].map((s) => s.pollIntervalMs));
    const now = Date.now();
    const at = Math.max(now + GATHER_MS, this.lastStart + interval);
    this.timer = setTimeout(() => void this.fire(), at - now);
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    const batch = [...this.subscribers];
    if (batch.length === 0) return;
    this.inFlight = true;
    this.lastStart = Date.now();
    this.counts.batches++;
    const targets = [...new Map(batch.map((s) => [s.runId, { runId: s.runId, taskLogFile: s.taskLogFile }])).values()];
    const timeoutMs = Math.max(...batch.map((s) => s.probeTimeoutMs));
    let answer: { probes: Map<string, Probe> } | { error: Error };
    try {
      answer = { probes: await this.host.probeMany(targets, { timeoutMs }) };
    } catch (e) {
      this.counts.failed++;
      answer = { error: e instanceof Error ? e : new Error(String(e)) };
    }
    this.inFlight = false;
    for (const sub of batch) {
      if (!this.subscribers.has(sub)) continue;
      const got = 'error' in answer ? answer : { probe: structuredClone(answer.probes.get(sub.runId)!) };
      const waiter = sub.waiter;
      sub.waiter = undefined;
      if (!waiter) sub.unseen = got;
      else if ('probe' in got) waiter.resolve(got.probe);
      else waiter.reject(got.error);
    }
    this.schedule();
  }
}

/** The HostProbes of every host this worker's monitors watch, created on first use. */
export class WorkerProbes {
  private readonly hosts = new Map<string, HostProbes>();

  of(host: ShellHost): HostProbes {
    let h = this.hosts.get(host.name);
    if (!h) this.hosts.set(host.name, (h = new HostProbes(host)));
    return h;
  }

  /** Batches sent so far, per host. */
  counts(): Record<string, { batches: number; failed: number; subscribers: number }> {
    return Object.fromEntries([...this.hosts].map(([name, h]) => [name, { ...h.counts, subscribers: h.size }]));
  }
}
