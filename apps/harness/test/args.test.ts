import { describe, expect, it } from 'vitest';
import { parseHarnessArgs, UsageError } from '../src/args.ts';
import { defaultSuiteCases, planScenarios } from '../src/scenarios.ts';

describe('parseHarnessArgs: good flags', () => {
  it('no options: the default suite, with the documented defaults', () => {
    const options = parseHarnessArgs([]);
    expect(options).toMatchObject({
      help: false,
      defaultSuite: true,
      scenarios: ['insert'],
      targets: ['raw', 'repo'],
      modes: ['process', 'thread', 'async'],
      journals: ['wal'],
      writers: [5, 50, 500],
      rowsPerWriter: 1,
      prefill: 0,
      busyTimeoutMs: 5000,
      lockTimeoutMs: 30_000,
      dbPath: undefined,
      keep: false,
      findLimit: false,
      limitCap: 1000,
      chaos: 'none',
      readers: undefined,
      timeoutMs: 300_000,
    });
  });

  it('output options keep the default suite; scenario options replace it', () => {
    expect(parseHarnessArgs(['--json', 'out.json', '--report', 'r.html', '--keep']).defaultSuite).toBe(true);
    expect(parseHarnessArgs(['--busy-timeout', '0', '--lock-timeout', '60000']).defaultSuite).toBe(true);
    for (const flag of [
      ['--target', 'raw'],
      ['--mode', 'async'],
      ['--writers', '7'],
      ['--journal', 'delete'],
    ]) {
      expect(parseHarnessArgs(flag).defaultSuite).toBe(false);
    }
  });

  it('every flag, lists deduplicated and writers sorted', () => {
    const options = parseHarnessArgs([
      '--target=repo',
      '--mode',
      'thread,process,thread',
      '--writers',
      '500, 5,50,5',
      '--rows-per-writer',
      '3',
      '--journal',
      'wal,delete',
      '--prefill',
      '10000',
      '--busy-timeout',
      '0',
      '--lock-timeout',
      '120000',
      '--db',
      '/tmp/x.db',
      '--keep',
      '--json',
      'r.json',
      '--report',
      'r.HTML',
      '--timeout',
      '20',
    ]);
    expect(options).toMatchObject({
      defaultSuite: false,
      targets: ['repo'],
      modes: ['thread', 'process'],
      writers: [5, 50, 500],
      writersGiven: true,
      rowsPerWriter: 3,
      journals: ['wal', 'delete'],
      prefill: 10_000,
      busyTimeoutMs: 0,
      lockTimeoutMs: 120_000,
      dbPath: '/tmp/x.db',
      keep: true,
      jsonPath: 'r.json',
      reportPath: 'r.HTML',
      timeoutMs: 20_000,
    });
  });

  it('--find-limit defaults to the raw target; --chaos kill to processes and several rows per writer', () => {
    expect(parseHarnessArgs(['--find-limit', '--limit-cap', '64'])).toMatchObject({
      findLimit: true,
      targets: ['raw'],
      modes: ['process'],
      limitCap: 64,
    });
    expect(parseHarnessArgs(['--chaos', 'kill'])).toMatchObject({
      chaos: 'kill',
      modes: ['process'],
      writers: [20, 200],
      rowsPerWriter: 50,
    });
    expect(parseHarnessArgs(['-h']).help).toBe(true);
  });

  it('--scenario mixed: processes and threads, 20 writers of each kind with 20 rows each, 4 readers', () => {
    const options = parseHarnessArgs(['--scenario', 'mixed']);
    expect(options).toMatchObject({
      defaultSuite: false,
      scenarios: ['mixed'],
      modes: ['process', 'thread'],
      writers: [20],
      rowsPerWriter: 20,
      readers: undefined,
    });
    const plan = planScenarios(options);
    // Planned once per case (both kinds of writers run together), as repo: its rows decide the exit code.
    expect(plan.map((s) => `${s.scenario} ${s.target} ${s.mode} ${s.writers} ${s.rowsPerWriter} ${s.readers}`)).toEqual(
      ['mixed repo process 20 20 4', 'mixed repo thread 20 20 4'],
    );
    expect(planScenarios(parseHarnessArgs(['--scenario', 'mixed', '--readers', '0', '--mode', 'thread']))).toEqual([
      expect.objectContaining({ scenario: 'mixed', mode: 'thread', readers: 0 }),
    ]);
  });

  it('--readers: readers alongside any scenario; by default 4 with --chaos kill and none otherwise', () => {
    expect(planScenarios(parseHarnessArgs(['--chaos', 'kill'])).map((s) => s.readers)).toEqual([4, 4, 4, 4]);
    expect(planScenarios(parseHarnessArgs(['--mode', 'async', '--writers', '5'])).map((s) => s.readers)).toEqual([
      0, 0,
    ]);
    expect(
      planScenarios(parseHarnessArgs(['--mode', 'async', '--writers', '5', '--readers', '2'])).map((s) => s.readers),
    ).toEqual([2, 2]);
  });
});

describe('parseHarnessArgs: bad flags get a message naming the flag', () => {
  const bad: [string[], RegExp][] = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['stray'], /positional/i],
    [['--writers'], /argument missing/i],
    [['--writers', '0'], /--writers must be an integer from 1/],
    [['--writers', '5,,50'], /--writers got an empty item/],
    [['--writers', 'five'], /--writers must be an integer/],
    [['--writers', '2.5'], /--writers must be an integer/],
    [['--rows-per-writer=-1'], /--rows-per-writer must be an integer/],
    [['--rows-per-writer', '-1'], /argument is ambiguous/],
    [['--prefill', '1e3'], /--prefill must be an integer/],
    [['--busy-timeout', 'soon'], /--busy-timeout must be an integer/],
    [['--lock-timeout', '-5'], /argument is ambiguous/],
    [['--lock-timeout', '99999999'], /--lock-timeout must be an integer from 0 to 3600000/],
    [['--target', 'raw,orm'], /--target takes a comma-separated list of raw, repo; "orm" is not one/],
    [['--mode', 'proc'], /--mode takes .* "proc" is not one/],
    [['--journal', 'truncate'], /--journal takes .* "truncate" is not one/],
    [['--chaos', 'flood'], /--chaos must be one of none, kill/],
    [['--report', 'out.png'], /--report needs a file name ending in .html/],
    [['--json', ''], /--json needs a value/],
    [['--limit-cap', '100'], /--limit-cap only makes sense with --find-limit/],
    [['--find-limit', '--chaos', 'kill'], /cannot be combined/],
    [['--chaos', 'kill', '--mode', 'thread'], /--chaos kill needs --mode process/],
    [['--chaos', 'kill', '--rows-per-writer', '1'], /--chaos kill needs --rows-per-writer 2 or more/],
    [['--timeout', '0'], /--timeout must be an integer from 1/],
    [['--keep=yes'], /does not take an argument/],
    [
      ['--scenario', 'server'],
      /--scenario takes a comma-separated list of insert, mixed, service, maintenance; "server" is not one/,
    ],
    [['--scenario', 'mixed', '--mode', 'async'], /--scenario mixed runs writers as processes or threads/],
    [['--scenario', 'mixed', '--target', 'raw'], /--scenario mixed runs repo and raw writers together/],
    [['--scenario', 'mixed', '--chaos', 'kill'], /--scenario mixed cannot be combined with --find-limit or --chaos/],
    [['--readers', 'some'], /--readers must be an integer from 0/],
    [['--scenario', 'service,mixed'], /--scenario service runs alone/],
    [['--scenario', 'service', '--readers', '2'], /--scenario service sets up its own load/],
  ];
  it.each(bad)('%j', (argv, message) => {
    expect(() => parseHarnessArgs(argv)).toThrow(UsageError);
    expect(() => parseHarnessArgs(argv)).toThrow(message);
  });
});

describe('planScenarios', () => {
  it('the default suite: WAL processes 5 to 200, one rollback-journal case, threads, async tasks, and the mixed scenario', () => {
    const plan = planScenarios(parseHarnessArgs([]));
    expect(plan).toHaveLength((defaultSuiteCases.length - 1) * 2 + 1);
    expect(plan.map((s) => `${s.scenario} ${s.target} ${s.mode} ${s.journal} ${s.writers}x${s.rowsPerWriter}`)).toEqual(
      [
        'insert raw process wal 5x1',
        'insert repo process wal 5x1',
        'insert raw process wal 50x1',
        'insert repo process wal 50x1',
        'insert raw process wal 200x1',
        'insert repo process wal 200x1',
        'insert raw process delete 50x60',
        'insert repo process delete 50x60',
        'insert raw thread wal 20x1',
        'insert repo thread wal 20x1',
        'insert raw async wal 500x1',
        'insert repo async wal 500x1',
        'mixed repo process wal 10x20',
      ],
    );
    expect(plan.every((s) => s.prefill === 0 && s.chaos === 'none')).toBe(true);
    expect(plan.map((s) => s.readers)).toEqual([...new Array(12).fill(0), 4]);
  });

  it('otherwise every combination of the options', () => {
    const plan = planScenarios(parseHarnessArgs(['--mode', 'thread,async', '--writers', '2,4', '--journal', 'delete']));
    expect(plan).toHaveLength(2 * 2 * 2);
    expect(plan.every((s) => s.journal === 'delete')).toBe(true);
    expect(plan.filter((s) => s.target === 'raw')).toHaveLength(4);
  });
});
