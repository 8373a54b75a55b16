// Wraps a gRPC service so every handler answers failures the same way: a KavkaError becomes a
// status with google.rpc.ErrorInfo details; anything else is logged as a bug and answered
// UNKNOWN_SERVER_ERROR. A request whose bytes do not decode reaches the handler as a marker and
// gets INVALID_REQUEST instead of grpc-js's bare INTERNAL, so any client reads a Kafka error name.
import type * as grpc from '@grpc/grpc-js';
import { KavkaError, toKavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { toServiceError } from '../proto/index.js';

const MALFORMED = Symbol('malformed request');

interface MalformedRequest {
  [MALFORMED]: string;
}

/** Returns a copy of the definition whose request deserializers never throw. */
export function tolerantDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const copy: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    copy[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return { [MALFORMED]: (error as Error).message } satisfies MalformedRequest;
        }
      },
    };
  }
  return copy as grpc.ServiceDefinition;
}

/** Throws INVALID_REQUEST if the request did not decode. */
export function checkDecoded(request: unknown): void {
  if (typeof request === 'object' && request !== null && MALFORMED in request) {
    throw new KavkaError('INVALID_REQUEST', `the request could not be decoded as the method's protobuf message: ${(request as MalformedRequest)[MALFORMED]}`);
  }
}

/** Turns a thrown error into the ServiceError to answer with, logging unexpected ones. */
export function answerError(error: unknown, logger: Logger, method: string): ReturnType<typeof toServiceError> {
  const kavkaError = toKavkaError(error);
  if (kavkaError.code === 'UNKNOWN_SERVER_ERROR') logger.error({ err: error, method }, 'request failed unexpectedly');
  else logger.debug({ method, code: kavkaError.code, message: kavkaError.message }, 'request rejected');
  return toServiceError(kavkaError);
}

/** Adapts an async function to a unary grpc-js handler. */
export function unary<Req, Res>(logger: Logger, method: string, handle: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => {
        checkDecoded(call.request);
        return handle(call.request, call);
      })
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(answerError(error, logger, method)),
      );
  };
}
