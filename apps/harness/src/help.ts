import { defaults } from './args.ts';

export const helpText = `Usage: pnpm harness [options]

How many simultaneous writers can record into one SQLite file, and what does
each approach lose? Runs writers against a fresh file per scenario and compares
rows acknowledged with rows actually stored.

With no scenario option (--scenario, --readers, --target, --mode, --writers,
--rows-per-writer, --journal, --prefill, --find-limit, --chaos), runs the
default suite (630 writer processes: about 3 minutes on 2 cores), both
targets side by side on 5, 50 and 200 writer processes of 1 row each
(WAL); 50 processes of 60 rows each in rollback-journal mode; 20 threads;
500 async tasks; and the mixed scenario (10 repo + 10 raw writer processes
of 20 rows, 4 readers).
Otherwise runs every combination of the options given, with the defaults
below for the others.

Scenarios
  --scenario LIST        insert, mixed, or insert,mixed (default: insert); service or maintenance alone: see below
                           insert: one target's writers alone on the file
                           mixed:  repo writers, raw writers (a connection per row: open, insert,
                                   close) and readers on one file at once, as processes or threads;
                                   each kind of writer counted apart (defaults: --mode process,thread,
                                   --writers ${defaults.mixedWriters.join(',')} of each kind, --rows-per-writer ${defaults.mixedRowsPerWriter}, --readers ${defaults.readers})
  --readers N            readers alongside the writers: open, SELECT count(*), close, in a loop;
                           every other one through the system's sqlite3 command line if installed
                           (processes; threads in thread mode. Default: ${defaults.readers} with --scenario mixed
                           or --chaos kill, else 0)
  --target LIST          raw, repo, or raw,repo (default: raw,repo; raw alone with --find-limit)
                           raw:  each writer opens its own connection with @repo/db and inserts
                                 one autocommit statement per row with Drizzle, then closes
                           repo: each writer uses @repo/metrics-repo (async mode: one shared repository)
  --mode LIST            process, thread, async, comma-separated (default: ${defaults.modes.join(',')})
  --writers LIST         numbers of simultaneous writers, comma-separated (default: ${defaults.writers.join(',')};
                           ${defaults.chaosWriters.join(',')} with --chaos kill)
  --rows-per-writer N    rows each writer inserts (default: ${defaults.rowsPerWriter}; ${defaults.chaosRowsPerWriter} with --chaos kill)
  --journal LIST         wal, delete (rollback journal), or wal,delete (default: ${defaults.journals.join(',')})
  --prefill N            rows the harness inserts sequentially before the writers start (default: ${defaults.prefill})
  --busy-timeout MS      the raw target's SQLite busy timeout (default: ${defaults.busyTimeoutMs}, the driver's;
                           0 shows raw contention). The repository waits on timers instead.
  --lock-timeout MS      the repo target's lockTimeoutMs (default: ${defaults.lockTimeoutMs}, the repository's default)
  --find-limit           double the number of writers (from the smallest --writers, else ${defaults.findLimitStart}) until
                           the first failure or lost row, and report the largest number with none
                           (default target raw, default mode process)
  --limit-cap N          stop --find-limit at N writers (default: ${defaults.limitCap})
  --chaos kill           SIGKILL half of the writer processes at random moments while they insert
                           one row after the other; lost = acknowledged rows missing from the file

Database
  --backend NAME         sqlite (default) or postgres. postgres: every scenario writes into a fresh
                           database of a PostgreSQL server: DATABASE_URL's when set, otherwise one
                           started for the run from this machine's PostgreSQL binaries (Debian's
                           postgresql package) and removed afterwards. raw = one connection per writer
                           with \`pg\`, one awaited autocommit INSERT per row; repo = openMetricsRepo({ url }).
                           Without scenario options: the default suite's WAL cases. --journal, --db,
                           --keep and --busy-timeout are SQLite's and are refused.

HTTP service
  --scenario service     instead of writer scenarios: the metrics service (@repo/service) in its own
                           process, once recording with a synchronous Drizzle insert (busy timeout
                           5000 ms), once through the repository, each under autocannon load on
                           POST /metrics with /healthz probed every 10 ms, 3 writer processes on the
                           same file and a foreign write lock held 2 s; prints both side by side and a
                           verdict (about 30 s; exit 1 when the repository's service failed a request,
                           lost a row or let /healthz p99 pass 20 ms). Takes --json FILE.

Reading and retention
  --scenario maintenance writers against summarize, export and prune at once, on one SQLite file of
                           --prefill rows (default 1,000,000) recorded two days ago: waves of 50
                           one-row writer processes and 500 async writers alone, then while one
                           repository prunes every prefilled row, summarizes every second and
                           exports, then alone again; prints the verdict line (errors, lost, writers' p99 with and
                           without; exit 1 on any error, lost row, or a p99 more than 2x the baseline).
                           Takes --prefill N and --json FILE.

Files and output
  --db PATH              use this file for every scenario (default: a fresh temporary file per
                           scenario, removed afterwards)
  --keep                 keep the temporary files and print their paths
  --json FILE            write the results as a JSON array
  --report FILE.html     write a self-contained HTML page: charts and the table
  --timeout SEC          stop a scenario (killing its writers) after SEC seconds (default: ${defaults.timeoutSeconds})
  -h, --help             show this help

Each scenario reports target, mode, journal, writers, rowsPerWriter, attempted,
acked, failed, errors (by code), stored (counted afterwards by a separate
read-only connection), lost (acked - stored), wallMs, rowsPerSec, insert
latency p50/p95/p99/max, CPU time spent while writing, peak memory, the
journal mode of the file afterwards, and the readers' reads and errors; then
one line per scenario in plain words (repo against raw).

Exit code: 0 when the repo target had no failed and no lost row (and its files
passed integrity_check), 1 otherwise, 2 for a bad command line.
`;
