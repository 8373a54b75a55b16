// The chaos target for the docker-compose cluster (docker-compose.yml at the repo root): nodes
// are the containers kavka-N on the network `kavka`, faults are docker CLI commands. kill is
// `docker kill` (SIGKILL, no restart: docker counts it as a manual stop), stop is `docker stop -t
// 30` (SIGTERM: a controlled shutdown), pause/resume are `docker pause/unpause` (the cgroup
// freezer), isolate is `docker network disconnect` (the node loses its peers and the host's
// clients alike) and heal reconnects it with its compose alias. Every command runs with a bound.
// A directed link cannot be cut between containers without tc/iptables inside them, so cutLink
// throws CHAOS_UNSUPPORTED.
import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChaosTarget, NodeFault } from './target.js';

export type ChaosErrorCode = 'CHAOS_UNSUPPORTED' | 'CHAOS_COMMAND_FAILED' | 'CHAOS_UNKNOWN_NODE';

/** A chaos target's failure; `code` is what callers branch on. */
export class ChaosError extends Error {
  readonly code: ChaosErrorCode;

  constructor(code: ChaosErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChaosError';
    this.code = code;
  }
}

/** One CLI invocation: `file args...`, bounded by timeoutMs; with outputPath, stdout and stderr go to that file. */
export interface CommandSpec {
  file: string;
  args: readonly string[];
  timeoutMs: number;
  cwd?: string;
  outputPath?: string;
}

/** Runs a command and resolves with its stdout ('' when it went to outputPath); rejects on a non-zero exit or the timeout. */
export type CommandRunner = (command: CommandSpec) => Promise<string>;

export interface ComposeTargetOptions {
  /** Directory holding docker-compose.yml; default: the repo root. */
  projectDir?: string;
  /** Node ids; default 1, 2, 3. */
  nodeIds?: readonly number[];
  /** Container of a node; default kavka-N (compose's container_name). */
  containerName?: (id: number) => string;
  /** DNS alias a node has on the network, restored by heal(); default kavka-N (the service name). */
  networkAlias?: (id: number) => string;
  /** The compose network; default kavka (its fixed name in docker-compose.yml). */
  network?: string;
  /** host:port of a node's CLIENT listener; default 127.0.0.1:(9091 + N). */
  clientAddress?: (id: number) => string;
  /** Admin HTTP base URL of a node; default http://127.0.0.1:(9643 + N). */
  adminUrl?: (id: number) => string;
  /** The docker CLI; default docker. */
  docker?: string;
  /** The compose CLI and its leading arguments; default ['docker-compose'] (['docker', 'compose'] for Compose v2). */
  compose?: readonly string[];
  /** Seconds `docker stop` waits for the controlled shutdown before SIGKILL; default 30. */
  stopGraceSeconds?: number;
  /** Bound on one docker command (other than stop and logs); default 20 s. */
  commandTimeoutMs?: number;
  /** Runs the commands; tests inject one, the default spawns them. */
  run?: CommandRunner;
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** The default CommandRunner: execFile with a timeout, or spawn into a file for outputPath. */
export const runCommand: CommandRunner = (command) => {
  const shown = [command.file, ...command.args].join(' ');
  if (command.outputPath !== undefined) {
    const outputPath = command.outputPath;
    return new Promise((resolvePromise, reject) => {
      const fd = openSync(outputPath, 'w');
      const child = spawn(command.file, [...command.args], { cwd: command.cwd, stdio: ['ignore', fd, fd] });
      const timer = setTimeout(() => child.kill('SIGKILL'), command.timeoutMs);
      const finish = (error: Error | undefined) => {
        clearTimeout(timer);
        closeSync(fd);
        if (error === undefined) resolvePromise('');
        else reject(error);
      };
      child.once('error', (error) => finish(new ChaosError('CHAOS_COMMAND_FAILED', `${shown}: ${error.message}`, { cause: error })));
      child.once('exit', (code, signal) => {
        if (code === 0) finish(undefined);
        else finish(new ChaosError('CHAOS_COMMAND_FAILED', `${shown} ${signal === 'SIGKILL' ? `timed out after ${command.timeoutMs} ms` : `exited with ${signal ?? `code ${code}`}`} (output in ${outputPath})`));
      });
    });
  }
  return new Promise((resolvePromise, reject) => {
    // Nothing to say on stdin: close it, or docker-compose may wait on it.
    const child = execFile(command.file, [...command.args], { cwd: command.cwd, timeout: command.timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        resolvePromise(stdout);
        return;
      }
      const timedOut = error.killed === true || error.signal === 'SIGKILL';
      const detail = stderr.trim() !== '' ? stderr.trim() : error.message;
      reject(new ChaosError('CHAOS_COMMAND_FAILED', `${shown} ${timedOut ? `timed out after ${command.timeoutMs} ms` : 'failed'}: ${detail}`, { cause: error }));
    });
    child.stdin?.end();
  });
};

export class ComposeTarget implements ChaosTarget {
  readonly kind = 'compose';
  /** The compose cluster runs the default 9 s broker.session.timeout.ms (the process target: 1.5 s). */
  readonly timeScale = 6;
  readonly nodeIds: readonly number[];
  readonly projectDir: string;
  readonly network: string;
  private readonly containerNameOf: (id: number) => string;
  private readonly aliasOf: (id: number) => string;
  private readonly clientAddressOf: (id: number) => string;
  private readonly adminUrlOf: (id: number) => string;
  private readonly docker: string;
  private readonly compose: readonly string[];
  private readonly stopGraceSeconds: number;
  private readonly commandTimeoutMs: number;
  private readonly run: CommandRunner;
  /** Nodes disconnected from the network by isolate(), reconnected by heal(). */
  private readonly isolated = new Set<number>();
  /** Nodes paused by fault('pause') and not resumed yet; destroy() resumes them. */
  private readonly paused = new Set<number>();
  /** Log files written by collectLogs(), returned by logFile(). */
  private readonly logPaths = new Map<number, string>();
  private startedCluster = false;

  constructor(options: ComposeTargetOptions = {}) {
    this.nodeIds = [...(options.nodeIds ?? [1, 2, 3])].sort((a, b) => a - b);
    this.projectDir = resolve(options.projectDir ?? REPO_ROOT);
    this.network = options.network ?? 'kavka';
    this.containerNameOf = options.containerName ?? ((id) => `kavka-${id}`);
    this.aliasOf = options.networkAlias ?? ((id) => `kavka-${id}`);
    this.clientAddressOf = options.clientAddress ?? ((id) => `127.0.0.1:${9091 + id}`);
    this.adminUrlOf = options.adminUrl ?? ((id) => `http://127.0.0.1:${9643 + id}`);
    this.docker = options.docker ?? 'docker';
    this.compose = options.compose ?? ['docker-compose'];
    if (this.compose.length === 0) throw new ChaosError('CHAOS_COMMAND_FAILED', 'compose command is empty; use ["docker-compose"] or ["docker", "compose"]');
    this.stopGraceSeconds = options.stopGraceSeconds ?? 30;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 20_000;
    this.run = options.run ?? runCommand;
  }

  /** The container of a node. */
  containerName(id: number): string {
    this.check(id);
    return this.containerNameOf(id);
  }

  bootstrap(): string[] {
    return this.nodeIds.map((id) => this.clientAddressOf(id));
  }

  adminUrl(id: number): string {
    this.check(id);
    return this.adminUrlOf(id);
  }

  async fault(id: number, fault: NodeFault): Promise<void> {
    const container = this.containerName(id);
    switch (fault) {
      case 'kill':
        await this.dockerCommand(['kill', container]);
        this.paused.delete(id);
        return;
      case 'stop':
        // docker stop waits up to the grace period, then SIGKILLs; the bound covers both.
        await this.dockerCommand(['stop', '-t', String(this.stopGraceSeconds), container], this.stopGraceSeconds * 1000 + this.commandTimeoutMs);
        this.paused.delete(id);
        return;
      case 'pause':
        await this.dockerCommand(['pause', container]);
        this.paused.add(id);
        return;
      case 'resume':
        await this.dockerCommand(['unpause', container]);
        this.paused.delete(id);
        return;
      default: {
        const unknown: never = fault;
        throw new ChaosError('CHAOS_UNSUPPORTED', `compose target: unknown fault ${String(unknown)}`);
      }
    }
  }

  async start(id: number): Promise<void> {
    await this.dockerCommand(['start', this.containerName(id)], this.commandTimeoutMs * 2);
  }

  async isRunning(id: number): Promise<boolean> {
    let state: string;
    try {
      state = await this.dockerCommand(['inspect', '--format', '{{.State.Running}}', this.containerName(id)]);
    } catch (error) {
      // A container that does not exist (never created, or removed) is not running.
      if (error instanceof ChaosError && /no such (object|container)/i.test(error.message)) return false;
      throw error;
    }
    return state.trim() === 'true';
  }

  async isolate(id: number): Promise<void> {
    const container = this.containerName(id);
    if (this.isolated.has(id)) return;
    await this.dockerCommand(['network', 'disconnect', this.network, container]);
    this.isolated.add(id);
  }

  cutLink(from: number, to: number): Promise<void> {
    this.check(from);
    this.check(to);
    return Promise.reject(
      new ChaosError('CHAOS_UNSUPPORTED', `compose target cannot cut the single link ${from}->${to}: docker can only disconnect a container from the whole network (use isolate), the process target cuts links`),
    );
  }

  async heal(): Promise<void> {
    const failures: string[] = [];
    for (const id of [...this.isolated].sort((a, b) => a - b)) {
      try {
        await this.dockerCommand(['network', 'connect', '--alias', this.aliasOf(id), this.network, this.containerNameOf(id)]);
        this.isolated.delete(id);
      } catch (error) {
        // Reconnected already (by hand, or a heal that timed out after docker acted): healed.
        if (error instanceof ChaosError && /already exists|is already connected/i.test(error.message)) this.isolated.delete(id);
        else failures.push((error as Error).message);
      }
    }
    if (failures.length > 0) throw new ChaosError('CHAOS_COMMAND_FAILED', `heal left nodes isolated: ${failures.join('; ')}`);
  }

  /** The file collectLogs() last wrote for the node; undefined before it ran. */
  logFile(id: number): string | undefined {
    this.check(id);
    return this.logPaths.get(id);
  }

  /** Writes each node's container log (`docker logs`, stdout and stderr) to dir/kavka-N.log. */
  async collectLogs(dir: string): Promise<Map<number, string>> {
    mkdirSync(dir, { recursive: true });
    const written = new Map<number, string>();
    for (const id of this.nodeIds) {
      const container = this.containerNameOf(id);
      const path = join(dir, `${container}.log`);
      await this.run({ file: this.docker, args: ['logs', container], timeoutMs: 60_000, outputPath: path });
      this.logPaths.set(id, path);
      written.set(id, path);
    }
    return written;
  }

  /**
   * `docker-compose up -d` in the project dir, then waits until every node's /readyz passes.
   * destroy() then stops the containers it started (their volumes stay).
   */
  async up(options: { readyTimeoutMs?: number; isReady?: (adminUrl: string) => Promise<boolean> } = {}): Promise<void> {
    await this.composeCommand(['up', '-d'], 180_000);
    this.startedCluster = true;
    const isReady = options.isReady ?? ((url: string) => fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false));
    const timeoutMs = options.readyTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    // fetch's sockets and AbortSignal.timeout do not keep Node running: hold it while we wait.
    const keepAlive = setInterval(() => undefined, 1_000);
    try {
      await this.waitReady(isReady, deadline, timeoutMs);
    } finally {
      clearInterval(keepAlive);
    }
  }

  private async waitReady(isReady: (adminUrl: string) => Promise<boolean>, deadline: number, timeoutMs: number): Promise<void> {
    for (;;) {
      const states = await Promise.all(this.nodeIds.map((id) => isReady(this.adminUrlOf(id))));
      if (states.every(Boolean)) return;
      if (Date.now() >= deadline) {
        const waiting = this.nodeIds.filter((_, i) => !states[i]);
        throw new ChaosError('CHAOS_COMMAND_FAILED', `compose cluster not ready within ${timeoutMs} ms: node(s) ${waiting.join(', ')} fail /readyz`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Heals, resumes paused nodes, and stops the cluster if up() started it. Volumes stay. */
  async destroy(): Promise<void> {
    const failures: string[] = [];
    await this.heal().catch((error: unknown) => failures.push((error as Error).message));
    for (const id of [...this.paused]) {
      await this.fault(id, 'resume').catch((error: unknown) => failures.push((error as Error).message));
    }
    if (this.startedCluster) {
      await this.composeCommand(['stop', '-t', String(this.stopGraceSeconds)], (this.stopGraceSeconds + 30) * 1000).then(
        () => {
          this.startedCluster = false;
        },
        (error: unknown) => failures.push((error as Error).message),
      );
    }
    if (failures.length > 0) throw new ChaosError('CHAOS_COMMAND_FAILED', `compose target cleanup: ${failures.join('; ')}`);
  }

  private check(id: number): void {
    if (!this.nodeIds.includes(id)) throw new ChaosError('CHAOS_UNKNOWN_NODE', `compose target has no node ${id} (nodes ${this.nodeIds.join(', ')})`);
  }

  private dockerCommand(args: string[], timeoutMs = this.commandTimeoutMs): Promise<string> {
    return this.run({ file: this.docker, args, timeoutMs });
  }

  private composeCommand(args: string[], timeoutMs: number): Promise<string> {
    const [file, ...lead] = this.compose;
    return this.run({ file, args: [...lead, '-f', join(this.projectDir, 'docker-compose.yml'), ...args], timeoutMs, cwd: this.projectDir });
  }
}
