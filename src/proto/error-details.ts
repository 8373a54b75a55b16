// Request-level errors travel as a gRPC status whose `grpc-status-details-bin` trailer holds a
// google.rpc.Status with one google.rpc.ErrorInfo: reason = the Kafka error name, domain
// "kavka.dev", metadata = { retriable, leader_id, leader_endpoint }. Any gRPC client in any
// language can decode it with the standard googleapis messages.
import { join } from 'node:path';
import protobuf from 'protobufjs';
import * as grpc from '@grpc/grpc-js';
import { KavkaError, isErrorName, type ErrorName } from '../util/errors.js';
import { PROTO_DIR } from './load.js';

export const ERROR_DOMAIN = 'kavka.dev';
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(PROTO_DIR, target));
// keepCase: google.protobuf.Any's fields are built into protobufjs as `type_url` and `value`.
root.loadSync('google/rpc/status.proto', { keepCase: true });
const StatusType = root.lookupType('google.rpc.Status');
const ErrorInfoType = root.lookupType('google.rpc.ErrorInfo');

export interface ErrorInfo {
  reason: ErrorName;
  retriable: boolean;
  leaderId?: number;
  leaderEndpoint?: string;
}

/** The gRPC status code a Kafka error maps to, so generic gRPC tooling sees a sensible code. */
export function grpcStatusFor(code: ErrorName): grpc.status {
  switch (code) {
    case 'UNKNOWN_TOPIC_OR_PARTITION':
    case 'GROUP_ID_NOT_FOUND':
      return grpc.status.NOT_FOUND;
    case 'TOPIC_ALREADY_EXISTS':
      return grpc.status.ALREADY_EXISTS;
    case 'OFFSET_OUT_OF_RANGE':
      return grpc.status.OUT_OF_RANGE;
    case 'NOT_LEADER_OR_FOLLOWER':
    case 'LEADER_NOT_AVAILABLE':
    case 'NOT_ENOUGH_REPLICAS':
    case 'NOT_ENOUGH_REPLICAS_AFTER_APPEND':
    case 'NOT_CONTROLLER':
    case 'COORDINATOR_NOT_AVAILABLE':
    case 'KAFKA_STORAGE_ERROR':
    case 'BROKER_NOT_AVAILABLE':
    case 'REPLICA_NOT_AVAILABLE':
      return grpc.status.UNAVAILABLE;
    case 'REQUEST_TIMED_OUT':
      return grpc.status.DEADLINE_EXCEEDED;
    case 'MESSAGE_TOO_LARGE':
    case 'RECORD_LIST_TOO_LARGE':
      return grpc.status.RESOURCE_EXHAUSTED;
    case 'UNKNOWN_SERVER_ERROR':
      return grpc.status.INTERNAL;
    case 'UNSUPPORTED_VERSION':
    case 'UNSUPPORTED_COMPRESSION_TYPE':
      return grpc.status.UNIMPLEMENTED;
    default:
      return grpc.status.INVALID_ARGUMENT;
  }
}

/** A grpc-js ServiceError carrying the Kafka error in its status details. */
export function toServiceError(error: KavkaError): Partial<grpc.StatusObject> & Error {
  const metadataMap: Record<string, string> = { retriable: String(error.retriable) };
  if (error.leaderHint !== undefined) metadataMap.leader_id = String(error.leaderHint);
  if (error.leaderEndpoint !== undefined) metadataMap.leader_endpoint = error.leaderEndpoint;
  const info = ErrorInfoType.encode(ErrorInfoType.create({ reason: error.code, domain: ERROR_DOMAIN, metadata: metadataMap })).finish();
  const code = grpcStatusFor(error.code);
  const message = `${error.code}: ${error.message}`;
  const status = StatusType.encode(StatusType.create({ code, message, details: [{ type_url: ERROR_INFO_TYPE_URL, value: info }] })).finish();
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(status));
  return Object.assign(new Error(message), { code, details: message, metadata });
}

/** Reads the ErrorInfo out of a failed call's trailers, if the server put one there. */
export function readErrorInfo(metadata: grpc.Metadata | undefined): ErrorInfo | undefined {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (raw === undefined || typeof raw === 'string') return undefined;
  const status = StatusType.toObject(StatusType.decode(raw)) as { details?: { type_url: string; value: Uint8Array }[] };
  const any = status.details?.find((d) => d.type_url === ERROR_INFO_TYPE_URL);
  if (any === undefined) return undefined;
  const info = ErrorInfoType.toObject(ErrorInfoType.decode(any.value)) as { reason: string; metadata?: Record<string, string> };
  if (!isErrorName(info.reason)) return undefined;
  const leaderId = info.metadata?.leader_id;
  return {
    reason: info.reason,
    retriable: info.metadata?.retriable === 'true',
    leaderId: leaderId === undefined ? undefined : Number(leaderId),
    leaderEndpoint: info.metadata?.leader_endpoint,
  };
}

/** Turns any failed gRPC call into a KavkaError with the server's Kafka error code. */
export function fromServiceError(error: unknown): KavkaError {
  if (error instanceof KavkaError) return error;
  const serviceError = error as Partial<grpc.ServiceError>;
  const info = readErrorInfo(serviceError.metadata);
  const message = serviceError.details ?? (error instanceof Error ? error.message : String(error));
  if (info !== undefined) {
    return new KavkaError(info.reason, message.replace(`${info.reason}: `, ''), {
      retriable: info.retriable,
      leaderHint: info.leaderId,
      leaderEndpoint: info.leaderEndpoint,
      cause: error,
    });
  }
  switch (serviceError.code) {
    case grpc.status.UNAVAILABLE:
      return new KavkaError('BROKER_NOT_AVAILABLE', message, { cause: error });
    case grpc.status.DEADLINE_EXCEEDED:
      return new KavkaError('REQUEST_TIMED_OUT', message, { cause: error });
    case grpc.status.RESOURCE_EXHAUSTED:
      return new KavkaError('MESSAGE_TOO_LARGE', message, { cause: error });
    default:
      return new KavkaError('UNKNOWN_SERVER_ERROR', message, { cause: error });
  }
}
