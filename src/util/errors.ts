// Kafka's error names and numeric codes, as the wire protocol carries them. Kavka keeps both
// exact (DESIGN.md section 6) so that a future Kafka-protocol listener needs no translation.
// The proto enum `kavka.v1.ErrorCode` lists the same names with the same numbers; a test keeps
// the two in step.

export const ERROR_CODES = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_FETCH_SIZE: 4,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  BROKER_NOT_AVAILABLE: 8,
  REPLICA_NOT_AVAILABLE: 9,
  MESSAGE_TOO_LARGE: 10,
  NETWORK_EXCEPTION: 13,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  INVALID_COMMIT_OFFSET_SIZE: 28,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  NOT_CONTROLLER: 41,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  KAFKA_STORAGE_ERROR: 56,
  LOG_DIR_NOT_FOUND: 57,
  UNKNOWN_PRODUCER_ID: 59,
  GROUP_ID_NOT_FOUND: 69,
  TOPIC_DELETION_DISABLED: 73,
  FENCED_LEADER_EPOCH: 74,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  UNKNOWN_LEADER_EPOCH: 75,
  STALE_BROKER_EPOCH: 77,
  OFFSET_NOT_AVAILABLE: 78,
  INVALID_RECORD: 87,
  INVALID_UPDATE_VERSION: 95,
  UNKNOWN_TOPIC_ID: 100,
  INCONSISTENT_CLUSTER_ID: 104,
} as const;

export type ErrorName = keyof typeof ERROR_CODES;

// Errors a client may retry after a metadata refresh and a backoff (Kafka's RetriableException
// subclasses). Anything not listed is not retriable.
const RETRIABLE: ReadonlySet<ErrorName> = new Set<ErrorName>([
  'CORRUPT_MESSAGE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_OR_FOLLOWER',
  'REQUEST_TIMED_OUT',
  'BROKER_NOT_AVAILABLE',
  'REPLICA_NOT_AVAILABLE',
  'NETWORK_EXCEPTION',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
  'NOT_ENOUGH_REPLICAS',
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'NOT_CONTROLLER',
  'KAFKA_STORAGE_ERROR',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'OFFSET_NOT_AVAILABLE',
]);

const NAMES_BY_CODE = new Map<number, ErrorName>(
  (Object.entries(ERROR_CODES) as [ErrorName, number][]).map(([name, code]) => [code, name]),
);

export function isErrorName(value: string): value is ErrorName {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

export function errorNameForCode(code: number): ErrorName {
  return NAMES_BY_CODE.get(code) ?? 'UNKNOWN_SERVER_ERROR';
}

export interface KavkaErrorOptions {
  retriable?: boolean;
  leaderHint?: number;
  leaderEndpoint?: string;
  cause?: unknown;
}

// The one error type that crosses layers. `code` is a Kafka error name; callers branch on it
// (or on isRetriable), never on the message text.
export class KavkaError extends Error {
  readonly code: ErrorName;
  readonly retriable: boolean;
  readonly leaderHint: number | undefined;
  readonly leaderEndpoint: string | undefined;

  constructor(code: ErrorName, message: string, options: KavkaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KavkaError';
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE.has(code);
    this.leaderHint = options.leaderHint;
    this.leaderEndpoint = options.leaderEndpoint;
  }

  get numericCode(): number {
    return ERROR_CODES[this.code];
  }
}

export function isRetriable(error: unknown): boolean {
  return error instanceof KavkaError && error.retriable;
}

export function isRetriableName(name: ErrorName): boolean {
  return RETRIABLE.has(name);
}

// Wraps anything thrown into a KavkaError, keeping the original as `cause`.
export function toKavkaError(error: unknown, fallback: ErrorName = 'UNKNOWN_SERVER_ERROR'): KavkaError {
  if (error instanceof KavkaError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new KavkaError(fallback, message, { cause: error });
}
