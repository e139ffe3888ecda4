/** Promise helpers shared by the transports and the host operations: aborts and deadlines, written once. */

/** The error an aborted SSH operation rejects with: an AbortError whose cause is the signal's reason. */
export function abortError(signal?: AbortSignal): Error {
  const e = new Error('the operation was aborted', { cause: signal?.reason });
  e.name = 'AbortError';
  return e;
}

/** The signal's own reason (what a collection aborts its transfers with), or a plain "aborted". */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * Settles like `work`, or rejects with `reasonOf(signal)` as soon as `signal` aborts, even if
 * `work` never settles (a transfer to a frozen host).
 */
export function raceAbort<T>(work: Promise<T>, signal?: AbortSignal, reasonOf: (signal: AbortSignal) => unknown = abortError): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(reasonOf(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reasonOf(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Rejects with `onTimeout()` at `deadline`; a value arriving later is handed to `onLate`. */
export function withDeadline<T>(p: Promise<T>, deadline: number | undefined, onTimeout: () => Error, onLate?: (v: T) => void): Promise<T> {
  if (deadline === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      reject(onTimeout());
    }, Math.max(0, deadline - Date.now()));
    p.then(
      (v) => {
        clearTimeout(t);
        if (timedOut) onLate?.(v);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e as Error);
      },
    );
  });
}

/** Waits until every promise has settled, or `ms` passed (bounded: a frozen host may never answer). */
export async function settledWithin(promises: Iterable<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
