/** The CLI's user-facing failures, and the one place errors from Temporal's client become one line. */
import { isGrpcServiceError, ServiceError, type Client } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import { CliError, EXIT_TEMPORAL } from './cli-error';

export { CliError, EXIT_TEMPORAL };

/** Which Temporal the CLI talks to, as far as messages need it. */
export interface TemporalWhere {
  address: string;
  namespace: string;
}

/** gRPC status codes (grpc/status.h) the messages below tell apart. */
const GRPC = { deadlineExceeded: 4, notFound: 5, permissionDenied: 7, unimplemented: 12, unavailable: 14, unauthenticated: 16 } as const;

const firstLine = (s: string) => (s.split('\n')[0] ?? '').trim();

function namespaceMissing(where: TemporalWhere, namespace: string): CliError {
  return new CliError(
    `Temporal namespace "${namespace}" does not exist at ${where.address}; create it (temporal operator namespace create --namespace ${namespace}) or set TEMPORAL_NAMESPACE to an existing one`,
    EXIT_TEMPORAL,
  );
}

/** The errors `e` wraps, outermost first (cause chains, at most 8 deep). */
function chain(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let x = e; x !== undefined && x !== null && out.length < 8; x = (x as { cause?: unknown }).cause) out.push(x);
  return out;
}

/**
 * A one-line CliError (exit 3) for an error from Temporal's client (an unknown namespace, a service
 * error, a connection that failed), or undefined when `e` is none of those.
 */
export function temporalCliError(e: unknown, where: TemporalWhere): CliError | undefined {
  const errors = chain(e);
  const missing = errors.find((x): x is NamespaceNotFoundError => x instanceof NamespaceNotFoundError);
  if (missing) return namespaceMissing(where, missing.namespace || where.namespace);
  const grpc = errors.find(isGrpcServiceError);
  if (grpc) {
    const details = firstLine(grpc.details || grpc.message);
    if (grpc.code === GRPC.notFound && /namespace/i.test(details)) return namespaceMissing(where, where.namespace);
    if (grpc.code === GRPC.unavailable || grpc.code === GRPC.deadlineExceeded) {
      return new CliError(`cannot reach Temporal at ${where.address} (${details}); check that it runs (orbit up for the embedded server) or set TEMPORAL_ADDRESS`, EXIT_TEMPORAL);
    }
    if (grpc.code === GRPC.unauthenticated || grpc.code === GRPC.permissionDenied) {
      return new CliError(`Temporal at ${where.address} refused the request for namespace "${where.namespace}" (${details}); check TEMPORAL_API_KEY and the TLS settings`, EXIT_TEMPORAL);
    }
    return new CliError(`Temporal at ${where.address} (namespace "${where.namespace}") failed the request: ${details}`, EXIT_TEMPORAL);
  }
  const service = errors.find((x): x is ServiceError => x instanceof ServiceError);
  if (service) return new CliError(`Temporal at ${where.address} (namespace "${where.namespace}") failed the request: ${firstLine(service.message)}`, EXIT_TEMPORAL);
  return undefined;
}

/**
 * Asks Temporal once whether the client's namespace exists, so a command refuses an unknown
 * TEMPORAL_NAMESPACE in one line before it builds or starts anything. A server that does not let this
 * client describe namespaces (permission denied, unimplemented) is trusted: the command goes on.
 */
export async function checkNamespace(client: Client, where: TemporalWhere): Promise<void> {
  try {
    await client.workflowService.describeNamespace({ namespace: where.namespace });
  } catch (e) {
    if (isGrpcServiceError(e) && (e.code === GRPC.permissionDenied || e.code === GRPC.unimplemented)) return;
    throw temporalCliError(e, where) ?? e;
  }
}

/** Runs a flag parser (node's parseArgs): an unknown or malformed flag is a usage error naming the usage line (exit 2), never a stack. */
export function parseOrUsage<T>(usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new CliError(`${(e as Error).message}; ${usage}`);
  }
}
