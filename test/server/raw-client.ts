// A gRPC client built only from the .proto files (no Kavka client code), as a user in another
// language would generate one. Calls return the response or the decoded ErrorInfo.
import * as grpc from '@grpc/grpc-js';
import { loadKavkaGrpc, readErrorInfo, type ErrorInfo } from '../../src/proto/index.js';
import type { KavkaClient } from '../../src/gen/kavka/v1/Kavka.js';

export type CallResult<T> = { ok: true; value: T } | { ok: false; code: grpc.status; details: string; info: ErrorInfo | undefined };

export function rawClient(address: string): KavkaClient {
  const kavka = loadKavkaGrpc();
  return new kavka.kavka.v1.Kavka(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
}

export function call<Req, Res>(client: KavkaClient, method: string, request: Req): Promise<CallResult<Res>> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void>)[method].bind(client);
    fn(request, { deadline: Date.now() + 20_000 }, (error, response) => {
      if (error) resolve({ ok: false, code: error.code, details: error.details, info: readErrorInfo(error.metadata) });
      else resolve({ ok: true, value: response as Res });
    });
  });
}
