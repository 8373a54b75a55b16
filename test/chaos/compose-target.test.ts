// ComposeTarget without Docker: the docker / docker-compose command lines it builds (through an
// injected runner), its bookkeeping for isolate/heal and pause, its errors; the default runner
// on plain node child processes; and docker-compose.yml agreeing with the target's defaults and
// with the broker's config keys.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChaosError, ComposeTarget, runCommand, type CommandSpec } from '../../src/chaos/compose-target.js';
import { BROKER_CONFIG_KEYS, buildBrokerConfig, envKeyFor } from '../../src/config/broker-config.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Recorder {
  commands: CommandSpec[];
  lines: () => string[];
}

/** A runner that records each command and answers from `answer` (or ''). */
function recorder(answer: (command: CommandSpec) => string | Error = () => ''): Recorder & { run: (c: CommandSpec) => Promise<string> } {
  const commands: CommandSpec[] = [];
  return {
    commands,
    lines: () => commands.map((c) => [c.file, ...c.args].join(' ')),
    run: async (command) => {
      commands.push(command);
      const result = answer(command);
      if (result instanceof Error) throw result;
      return result;
    },
  };
}

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kavka-compose-target-'));
  tempDirs.push(dir);
  return dir;
}

describe('ComposeTarget commands', () => {
  it('maps faults and start to docker kill / stop -t 30 / pause / unpause / start on kavka-N', async () => {
    const r = recorder();
    const target = new ComposeTarget({ run: r.run });
    await target.fault(1, 'kill');
    await target.fault(2, 'stop');
    await target.fault(3, 'pause');
    await target.fault(3, 'resume');
    await target.start(1);
    expect(r.lines()).toEqual([
      'docker kill kavka-1',
      'docker stop -t 30 kavka-2',
      'docker pause kavka-3',
      'docker unpause kavka-3',
      'docker start kavka-1',
    ]);
    // Every command is bounded; stop's bound covers its grace period.
    for (const command of r.commands) expect(command.timeoutMs).toBeGreaterThan(0);
    expect(r.commands[1].timeoutMs).toBeGreaterThan(30_000);
  });

  it('knows the cluster layout of docker-compose.yml', () => {
    const target = new ComposeTarget({ run: recorder().run });
    expect(target.kind).toBe('compose');
    expect(target.nodeIds).toEqual([1, 2, 3]);
    expect(target.bootstrap()).toEqual(['127.0.0.1:9092', '127.0.0.1:9093', '127.0.0.1:9094']);
    expect(target.adminUrl(2)).toBe('http://127.0.0.1:9645');
    expect(target.containerName(3)).toBe('kavka-3');
    expect(target.network).toBe('kavka');
    expect(target.projectDir).toBe(REPO_ROOT);
  });

  it('takes other names, a compose v2 CLI and another grace period', async () => {
    const r = recorder();
    const target = new ComposeTarget({
      run: r.run,
      nodeIds: [3, 1],
      containerName: (id) => `proj-kavka-${id}-1`,
      networkAlias: (id) => `node${id}`,
      network: 'proj_default',
      docker: '/usr/bin/docker',
      compose: ['docker', 'compose'],
      projectDir: '/srv/kavka',
      stopGraceSeconds: 5,
    });
    expect(target.nodeIds).toEqual([1, 3]);
    await target.fault(3, 'stop');
    await target.isolate(1);
    await target.heal();
    await target.up({ isReady: async () => true });
    await target.destroy();
    expect(r.lines()).toEqual([
      '/usr/bin/docker stop -t 5 proj-kavka-3-1',
      '/usr/bin/docker network disconnect proj_default proj-kavka-1-1',
      '/usr/bin/docker network connect --alias node1 proj_default proj-kavka-1-1',
      'docker compose -f /srv/kavka/docker-compose.yml up -d',
      'docker compose -f /srv/kavka/docker-compose.yml stop -t 5',
    ]);
    expect(r.commands[3].cwd).toBe('/srv/kavka');
  });

  it('reads isRunning from docker inspect; a missing container is not running', async () => {
    const answers = new Map<string, string | Error>([
      ['kavka-1', 'true\n'],
      ['kavka-2', 'false\n'],
      ['kavka-3', new ChaosError('CHAOS_COMMAND_FAILED', 'docker inspect failed: Error: No such object: kavka-3')],
    ]);
    const r = recorder((c) => answers.get(c.args[c.args.length - 1]) ?? '');
    const target = new ComposeTarget({ run: r.run });
    expect(await target.isRunning(1)).toBe(true);
    expect(await target.isRunning(2)).toBe(false);
    expect(await target.isRunning(3)).toBe(false);
    expect(r.lines()[0]).toBe('docker inspect --format {{.State.Running}} kavka-1');

    const down = new ComposeTarget({ run: recorder(() => new ChaosError('CHAOS_COMMAND_FAILED', 'Cannot connect to the Docker daemon')).run });
    await expect(down.isRunning(1)).rejects.toMatchObject({ code: 'CHAOS_COMMAND_FAILED' });
  });

  it('isolates by disconnecting from the network and heals with the compose alias, each node once', async () => {
    const r = recorder();
    const target = new ComposeTarget({ run: r.run });
    await target.isolate(2);
    await target.isolate(2);
    await target.isolate(1);
    await target.heal();
    await target.heal();
    expect(r.lines()).toEqual([
      'docker network disconnect kavka kavka-2',
      'docker network disconnect kavka kavka-1',
      'docker network connect --alias kavka-1 kavka kavka-1',
      'docker network connect --alias kavka-2 kavka kavka-2',
    ]);
  });

  it('counts a node connected already as healed, and keeps a node whose reconnect failed for the next heal', async () => {
    let fail = true;
    const r = recorder((c) => {
      if (c.args[1] !== 'connect') return '';
      if (c.args[c.args.length - 1] === 'kavka-1') return new ChaosError('CHAOS_COMMAND_FAILED', 'endpoint with name kavka-1 already exists in network kavka');
      return fail ? new ChaosError('CHAOS_COMMAND_FAILED', 'docker network connect timed out after 20000 ms') : '';
    });
    const target = new ComposeTarget({ run: r.run });
    await target.isolate(1);
    await target.isolate(3);
    await expect(target.heal()).rejects.toMatchObject({ code: 'CHAOS_COMMAND_FAILED', message: expect.stringContaining('timed out') });
    fail = false;
    await target.heal();
    expect(r.lines().filter((l) => l.includes(' connect '))).toEqual([
      'docker network connect --alias kavka-1 kavka kavka-1',
      'docker network connect --alias kavka-3 kavka kavka-3',
      'docker network connect --alias kavka-3 kavka kavka-3',
    ]);
  });

  it('cannot cut one link: CHAOS_UNSUPPORTED, and runs nothing', async () => {
    const r = recorder();
    const target = new ComposeTarget({ run: r.run });
    await expect(target.cutLink(1, 2)).rejects.toMatchObject({ name: 'ChaosError', code: 'CHAOS_UNSUPPORTED', message: expect.stringContaining('1->2') });
    expect(r.commands).toEqual([]);
  });

  it('refuses a node it does not have', async () => {
    const target = new ComposeTarget({ run: recorder().run });
    await expect(target.fault(4, 'kill')).rejects.toMatchObject({ code: 'CHAOS_UNKNOWN_NODE' });
    expect(() => target.adminUrl(0)).toThrow(ChaosError);
    expect(() => target.logFile(9)).toThrow(/no node 9/);
  });

  it('writes each container log to dir/kavka-N.log, which logFile then names', async () => {
    const r = recorder();
    const target = new ComposeTarget({ run: r.run });
    const dir = join(tempDir(), 'logs');
    expect(target.logFile(1)).toBeUndefined();
    const written = await target.collectLogs(dir);
    expect(r.lines()).toEqual(['docker logs kavka-1', 'docker logs kavka-2', 'docker logs kavka-3']);
    expect(r.commands.map((c) => c.outputPath)).toEqual([1, 2, 3].map((n) => join(dir, `kavka-${n}.log`)));
    expect(written.get(2)).toBe(join(dir, 'kavka-2.log'));
    expect(target.logFile(3)).toBe(join(dir, 'kavka-3.log'));
  });

  it('up() waits for every /readyz and fails with the nodes still not ready at the bound', async () => {
    const asked: string[] = [];
    let round = 0;
    const target = new ComposeTarget({ run: recorder().run });
    await target.up({
      isReady: async (url) => {
        asked.push(url);
        return ++round > 3;
      },
    });
    expect(asked.slice(0, 3)).toEqual(['http://127.0.0.1:9644', 'http://127.0.0.1:9645', 'http://127.0.0.1:9646']);

    const never = new ComposeTarget({ run: recorder().run });
    await expect(never.up({ readyTimeoutMs: 300, isReady: async (url) => url.endsWith('9644') })).rejects.toMatchObject({
      code: 'CHAOS_COMMAND_FAILED',
      message: expect.stringContaining('node(s) 2, 3'),
    });
  });

  it('destroy() heals, resumes paused nodes, and stops only a cluster it started', async () => {
    const r = recorder();
    const target = new ComposeTarget({ run: r.run });
    await target.fault(2, 'pause');
    await target.fault(3, 'pause');
    await target.fault(3, 'kill');
    await target.isolate(1);
    await target.destroy();
    expect(r.lines().slice(4)).toEqual(['docker network connect --alias kavka-1 kavka kavka-1', 'docker unpause kavka-2']);
  });
});

describe('runCommand (the default runner)', () => {
  it('returns stdout', async () => {
    await expect(runCommand({ file: process.execPath, args: ['-e', 'process.stdout.write("ok")'], timeoutMs: 10_000 })).resolves.toBe('ok');
  });

  it('fails with the command line and its stderr', async () => {
    const failing = runCommand({ file: process.execPath, args: ['-e', 'process.stderr.write("No such object: kavka-9"); process.exit(1)'], timeoutMs: 10_000 });
    await expect(failing).rejects.toMatchObject({ code: 'CHAOS_COMMAND_FAILED', message: expect.stringContaining('No such object: kavka-9') });
  });

  it('kills a command past its bound', async () => {
    const started = Date.now();
    await expect(runCommand({ file: process.execPath, args: ['-e', 'setTimeout(() => {}, 30000)'], timeoutMs: 300 })).rejects.toMatchObject({
      code: 'CHAOS_COMMAND_FAILED',
      message: expect.stringContaining('timed out after 300 ms'),
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('sends stdout and stderr to outputPath', async () => {
    const path = join(tempDir(), 'out.log');
    await runCommand({ file: process.execPath, args: ['-e', 'process.stdout.write("out\\n"); process.stderr.write("err\\n")'], timeoutMs: 10_000, outputPath: path });
    expect(readFileSync(path, 'utf8').split('\n').sort()).toEqual(['', 'err', 'out']);
    await expect(runCommand({ file: process.execPath, args: ['-e', 'process.exit(3)'], timeoutMs: 10_000, outputPath: path })).rejects.toMatchObject({
      message: expect.stringContaining('exited with code 3'),
    });
  });

  it('fails cleanly when the program does not exist', async () => {
    await expect(runCommand({ file: join(tempDir(), 'no-such-docker'), args: ['ps'], timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'CHAOS_COMMAND_FAILED' });
  });
});

describe('docker-compose.yml', () => {
  const compose = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');

  it('has the containers, network and 127.0.0.1-only ports the compose target assumes', () => {
    const target = new ComposeTarget({ run: recorder().run });
    for (const id of target.nodeIds) {
      expect(compose).toContain(`container_name: kavka-${id}`);
      expect(compose).toContain(`"127.0.0.1:${9091 + id}:${9091 + id}"`);
      expect(compose).toContain(`"127.0.0.1:${9643 + id}:9644"`);
      expect(compose).toContain(`KAVKA_NODE_ID: "${id}"`);
      expect(compose).toContain(`KAVKA_ADVERTISED_LISTENERS: CLIENT://127.0.0.1:${9091 + id},INTERNAL://kavka-${id}:9192`);
    }
    expect(compose).toMatch(/^networks:\n {2}kavka:\n {4}name: kavka$/m);
    // Every published port is bound to the loopback address.
    const published = [...compose.matchAll(/^\s+- "([^"]+)"$/gm)].map((m) => m[1]).filter((p) => /:\d+:\d+$/.test(p));
    expect(published).toHaveLength(6);
    for (const port of published) expect(port.startsWith('127.0.0.1:')).toBe(true);
  });

  it('configures the nodes only with KAVKA_* names the broker knows', () => {
    const known = new Set(Object.keys(BROKER_CONFIG_KEYS).map(envKeyFor));
    const used = [...new Set([...compose.matchAll(/^\s+(KAVKA_[A-Z0-9_]+):/gm)].map((m) => m[1]))];
    expect(used.length).toBeGreaterThan(8);
    for (const name of used) expect(known.has(name), name).toBe(true);
  });

  it('gives each node a config the broker accepts: 0.0.0.0 binds, advertised 127.0.0.1:909N and kavka-N:9192', () => {
    const envOf = (block: string) =>
      Object.fromEntries([...block.matchAll(/^\s+(KAVKA_[A-Z0-9_]+): "?([^"\n]*?)"?$/gm)].map((m) => [m[1], m[2]]));
    const common = envOf(compose.slice(compose.indexOf('x-kavka-cluster-env:'), compose.indexOf('\nservices:')));
    for (const id of [1, 2, 3]) {
      const start = compose.indexOf(`\n  kavka-${id}:\n`);
      const end = id < 3 ? compose.indexOf(`\n  kavka-${id + 1}:\n`) : compose.indexOf('\nnetworks:');
      const config = buildBrokerConfig({ env: { ...common, ...envOf(compose.slice(start, end)) } });
      expect(config.nodeId).toBe(id);
      expect(config.listeners).toEqual([
        { name: 'CLIENT', host: '0.0.0.0', port: 9091 + id },
        { name: 'INTERNAL', host: '0.0.0.0', port: 9192 },
      ]);
      expect(config.advertisedListeners).toEqual([
        { name: 'CLIENT', host: '127.0.0.1', port: 9091 + id },
        { name: 'INTERNAL', host: `kavka-${id}`, port: 9192 },
      ]);
      expect(config.quorumVoters).toEqual([1, 2, 3].map((n) => ({ nodeId: n, host: `kavka-${n}`, port: 9192 })));
      expect(config.isController).toBe(true);
      expect(config.admin).toEqual({ host: '0.0.0.0', port: 9644 });
      expect(config.logDir).toBe('/var/lib/kavka');
      expect(config.get('default.replication.factor')).toBe(3);
      expect(config.get('min.insync.replicas')).toBe(2);
    }
  });
});
