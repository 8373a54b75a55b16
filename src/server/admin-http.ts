// The admin HTTP port: /healthz (the process answers), /readyz (ready to serve: listeners bound,
// metadata loaded, log dir online) and Prometheus /metrics. With debug.fault.injection.enable,
// also POST /debug/storage-fault {"errno": "ENOSPC" | "EIO" | null, "store": "log" | "metadata"}:
// from then on every write, fsync and file creation in the log dir (store "log", the default), or
// every write of the metadata log's store ("metadata"), fails with that errno (null: they succeed
// again).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export type Readiness = { ready: true } | { ready: false; reason: string };

/** Which storage a fault hits: the log dir's partitions, or the metadata log's store. */
export type FaultStore = 'log' | 'metadata';

/** Sets (or with null clears) the errno one store's writes fail with. */
export type StorageFaultSwitch = (errno: string | null, store: FaultStore) => void;

const STORAGE_FAULT_ERRNOS = new Set(['ENOSPC', 'EIO', 'EDQUOT', 'EROFS']);

export class AdminHttpServer {
  private readonly server: Server;

  constructor(registry: Registry, readiness: () => Readiness, storageFault?: StorageFaultSwitch) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/debug/storage-fault' && storageFault !== undefined && req.method === 'POST') {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => {
          if (body.length < 1024) body += chunk;
        });
        req.on('end', () => {
          let parsed: { errno?: unknown; store?: unknown } = {};
          try {
            parsed = JSON.parse(body) as { errno?: unknown; store?: unknown };
          } catch {
            parsed = {};
          }
          const { errno } = parsed;
          const store = parsed.store ?? 'log';
          if ((errno !== null && (typeof errno !== 'string' || !STORAGE_FAULT_ERRNOS.has(errno))) || (store !== 'log' && store !== 'metadata')) {
            res.writeHead(400, { 'content-type': 'text/plain' }).end(`body must be {"errno": one of ${[...STORAGE_FAULT_ERRNOS].join(', ')} or null, "store": "log" (default) or "metadata"}\n`);
            return;
          }
          storageFault(errno, store);
          res.writeHead(200, { 'content-type': 'text/plain' }).end(errno === null ? `${store} writes succeed again\n` : `${store} writes fail with ${errno}\n`);
        });
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const state = readiness();
        if (state.ready) res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
        else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${state.reason}\n`);
      } else if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}\n`),
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
      }
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (error) => reject(new Error(`cannot listen on admin.listener ${host}:${port}: ${error.message}`, { cause: error })));
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
