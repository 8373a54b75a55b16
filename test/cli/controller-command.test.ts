// `kavka controller` as users run it: the built CLI (dist/cli/main.js, which `npm test` builds
// first) in a child process against a real single-node broker (node 1 is the only voter).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { formatQuorum, quorumJson } from '../../src/cli/controller-command.js';

const MAIN = join(process.cwd(), 'dist', 'cli', 'main.js');

let node: TestBroker;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kavka(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const b = () => ['-b', node.clientAddress];

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build (npm test does it first)`);
  node = await startTestBroker({ 'shutdown.timeout.ms': '500' });
});

afterAll(async () => {
  await node?.destroy();
});

describe('kavka controller describe', () => {
  it('takes -b before the command word too', async () => {
    const run = await kavka(['controller', ...b(), 'describe', '--json']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toMatchObject({ leaderId: 1 });
  });

  it('prints the leader, epoch and high watermark, then a table of voters and observers', async () => {
    const run = await kavka(['controller', 'describe', ...b()]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe('LeaderId:          1');
    expect(lines[1]).toMatch(/^LeaderEpoch: {7}[1-9]\d*$/);
    expect(lines[2]).toMatch(/^HighWatermark: {5}[1-9]\d*$/);
    expect(lines.slice(3, 6)).toEqual(['CurrentVoters:     [1]', 'CurrentObservers:  []', '']);
    expect(lines[6].split(/\s+/)).toEqual(['NodeId', 'DirectoryId', 'LogEndOffset', 'Lag', 'Status']);
    expect(lines[7].split(/\s+/)).toEqual(['1', expect.stringMatching(/^[0-9a-f-]{36}$/), expect.stringMatching(/^[1-9]\d*$/), '0', 'Leader']);
    expect(lines.slice(8)).toEqual(['']);
  });

  it('prints one JSON object with --json', async () => {
    const run = await kavka(['controller', 'describe', '--json', ...b()]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.trimEnd().split('\n')).toHaveLength(1);
    const quorum = JSON.parse(run.stdout) as { leaderId: number; leaderEpoch: number; highWatermark: number; voters: unknown[]; observers: unknown[] };
    expect(Object.keys(quorum)).toEqual(['leaderId', 'leaderEpoch', 'highWatermark', 'voters', 'observers']);
    expect(quorum).toMatchObject({ leaderId: 1, voters: [{ replicaId: 1, lag: 0 }], observers: [] });
    expect(quorum.leaderEpoch).toBeGreaterThanOrEqual(1);
    expect(quorum.highWatermark).toBeGreaterThanOrEqual(1);
    expect(quorum.voters[0]).toEqual({ replicaId: 1, directoryId: expect.stringMatching(/^[0-9a-f-]{36}$/), logEndOffset: expect.any(Number), lag: 0, rejoining: false });
  });
});

describe('kavka controller add-voter and remove-voter', () => {
  it('refuses to add a node that does not follow the metadata log, with exit code 1', async () => {
    const run = await kavka(['controller', 'add-voter', '7', ...b()]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Error: INVALID_REQUEST: node 7 does not follow the metadata log yet/);
    expect(run.stderr).not.toContain('Usage:');
  });

  it('refuses to remove the last voter, with exit code 1', async () => {
    const run = await kavka(['controller', 'remove-voter', '1', ...b()]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^Error: INVALID_REQUEST: node 1 is the last voter/);
    const after = JSON.parse((await kavka(['controller', 'describe', '--json', ...b()])).stdout) as { voters: { replicaId: number }[] };
    expect(after.voters.map((v) => v.replicaId)).toEqual([1]);
  });
});

describe('kavka controller usage errors', () => {
  // No broker is contacted: -b points nowhere, so a connection attempt would show as a different error.
  const nowhere = ['-b', '127.0.0.1:1'];

  it.each([
    [['add-voter'], 'Error: controller add-voter needs <id>, the node id of the voter'],
    [['remove-voter'], 'Error: controller remove-voter needs <id>, the node id of the voter'],
    [['add-voter', 'seven'], 'Error: controller add-voter: <id> "seven" is not a node id (expected a non-negative integer)'],
    [['remove-voter', '1.5'], 'Error: controller remove-voter: <id> "1.5" is not a node id (expected a non-negative integer)'],
    [['remove-voter', '-1'], 'Error: controller: <id> "-1" is not a node id (expected a non-negative integer)'],
    [['add-voter', '2', '3'], 'Error: controller add-voter takes one <id>, got 2 3'],
    [['add-voter', '2', '--json'], 'Error: --json applies to controller describe only'],
    [['describe', 'extra'], 'Error: controller describe takes no arguments, got extra'],
    [['describe', '--status'], 'Error: unknown option --status'],
    [['elect'], 'Error: unknown controller command "elect"'],
    [[], 'Error: kavka controller needs a command: describe, add-voter or remove-voter'],
  ])('kavka controller %j is a usage error', async (args, message) => {
    const run = await kavka(['controller', ...args, ...nowhere]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.split('\n')[0]).toBe(message);
    expect(run.stderr).toContain('Usage: kavka controller <command> [options]');
  });

  it('prints the usage with --help and exits 0, and exits 1 without a command', async () => {
    const help = await kavka(['controller', '--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('add-voter <id>');
    expect((await kavka(['controller', 'add-voter', '-h'])).code).toBe(0);
    const bare = await kavka(['controller']);
    expect(bare.code).toBe(1);
    expect(bare.stdout).toContain('Usage: kavka controller <command> [options]');
  });
});

describe('quorum output', () => {
  const quorum = {
    leaderId: 2,
    leaderEpoch: 5,
    highWatermark: '1041',
    voters: [
      { replicaId: 1, logEndOffset: '1040', lag: '2', directoryId: 'dir-one', rejoining: false },
      { replicaId: 2, logEndOffset: '1042', lag: '0', directoryId: 'dir-two', rejoining: false },
    ],
    observers: [
      { replicaId: 3, logEndOffset: '900', lag: '142', directoryId: 'dir-new', rejoining: true },
      { replicaId: 14, logEndOffset: '-1', lag: '1042', directoryId: '', rejoining: false },
    ],
  };

  it('marks the leader, followers, observers and a rejoining node in aligned columns, with directory ids', () => {
    expect(formatQuorum(quorum)).toBe(
      [
        'LeaderId:          2',
        'LeaderEpoch:       5',
        'HighWatermark:     1041',
        'CurrentVoters:     [1,2]',
        'CurrentObservers:  [3,14]',
        '',
        'NodeId  DirectoryId  LogEndOffset  Lag   Status',
        '1       dir-one      1040          2     Follower',
        '2       dir-two      1042          0     Leader',
        '3       dir-new      900           142   Observer (rejoining: its data was deleted)',
        '14      -            -1            1042  Observer',
        '',
      ].join('\n'),
    );
  });

  it('prints offsets and lag as JSON numbers', () => {
    expect(JSON.parse(quorumJson(quorum))).toEqual({
      leaderId: 2,
      leaderEpoch: 5,
      highWatermark: 1041,
      voters: [
        { replicaId: 1, directoryId: 'dir-one', logEndOffset: 1040, lag: 2, rejoining: false },
        { replicaId: 2, directoryId: 'dir-two', logEndOffset: 1042, lag: 0, rejoining: false },
      ],
      observers: [
        { replicaId: 3, directoryId: 'dir-new', logEndOffset: 900, lag: 142, rejoining: true },
        { replicaId: 14, directoryId: '', logEndOffset: -1, lag: 1042, rejoining: false },
      ],
    });
  });
});
