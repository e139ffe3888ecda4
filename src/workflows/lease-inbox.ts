/** What the fleet has said to a run: its grant or refusal, and grants it no longer waits for. */
import type { LeaseGrant, LeaseRefusal } from '../common/fleet';

/** The answers a run waits for; set up at its start (signals that come before are buffered). */
export class LeaseInbox {
  grant?: LeaseGrant;
  refusal?: LeaseRefusal;
  /** The request the run waits on; a grant for any other (stale) is handed back. */
  waitingFor?: string;
  stale: LeaseGrant[] = [];
  /** Signals to the fleet sent without waiting for them (a release as the job ends, a lost host); awaited at the run's end. */
  sent: Promise<void>[] = [];

  /** Tokens of every grant that came: a repeat (a delivery retried) changes nothing. */
  private readonly seen = new Set<number>();

  onGrant(g: LeaseGrant): void {
    if (this.seen.has(g.token)) return;
    this.seen.add(g.token);
    if (g.requestId === this.waitingFor && !this.grant) this.grant = g;
    else this.stale.push(g);
  }

  onRefusal(r: LeaseRefusal): void {
    if (r.requestId === this.waitingFor) this.refusal = r;
  }
}

