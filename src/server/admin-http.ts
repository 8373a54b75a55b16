// The admin HTTP port: /healthz (the process answers), /readyz (ready to serve: listeners bound,
// metadata loaded, log dir online) and Prometheus /metrics.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export type Readiness = { ready: true } | { ready: false; reason: string };

export class AdminHttpServer {
  private readonly server: Server;

  constructor(registry: Registry, readiness: () => Readiness) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
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
