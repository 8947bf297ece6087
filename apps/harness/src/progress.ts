import cliProgress from 'cli-progress';
import type { ScenarioResult } from './types.ts';
import type { WritersHooks } from './writers/writers-run.ts';

/** Progress of one scenario: writers getting ready, then writers finishing. */
export interface ScenarioProgress extends WritersHooks {
  /** The scenario's results: one, or one per kind of writer (mixed). */
  end(results: ScenarioResult[]): void;
}

export type ProgressReporter = (label: string, writers: number) => ScenarioProgress;

/**
 * A progress bar on stderr when it is a terminal; plain lines otherwise (logs
 * and CI keep a readable record instead of carriage returns).
 */
export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  return stream.isTTY ? barReporter(stream) : lineReporter(stream);
}

/** No output (tests, library use). */
export const silentProgress: ProgressReporter = () => ({ end: () => {} });

function barReporter(stream: NodeJS.WriteStream): ProgressReporter {
  return (label, writers) => {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: '{label} | {phase} [{bar}] {value}/{total} writers | {duration_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let ready = 0;
    let finished = 0;
    bar.start(writers, 0, { label, phase: 'starting' });
    return {
      onReady: () => bar.update(++ready),
      onReleased: () => bar.update(0, { phase: 'writing ' }),
      onFinished: () => bar.update(++finished),
      end: (results) => {
        bar.stop();
        stream.write(`${label}: ${outcomeLine(results)}\n`);
      },
    };
  };
}

function lineReporter(stream: NodeJS.WriteStream): ProgressReporter {
  return (label, writers) => {
    const startedAt = performance.now();
    stream.write(`${label}: starting ${writers} writers\n`);
    return {
      onReleased: () =>
        stream.write(`${label}: ready in ${seconds(performance.now() - startedAt)}, released, writing\n`),
      end: (results) => stream.write(`${label}: ${outcomeLine(results)}\n`),
    };
  };
}

function outcomeLine(results: ScenarioResult[]): string {
  const [first] = results;
  if (first === undefined) return 'no result';
  const mixed = results.length > 1;
  const counts = results.map((result) =>
    [
      `${mixed ? `${result.target} ` : ''}${result.acked}/${result.attempted} acked`,
      `${result.failed} failed`,
      `${result.stored} stored`,
      `${result.lost} lost`,
    ].join(', '),
  );
  const parts = [counts.join('; ')];
  if (first.killed > 0) parts.push(`${first.killed} writers killed`);
  if (first.reads !== undefined) parts.push(`${first.reads.reads} reads (${first.reads.failed} failed)`);
  parts.push(`${seconds(first.wallMs)} writing (ready in ${seconds(first.readyMs)})`);
  if (first.note !== undefined) parts.push(first.note);
  return parts.join(', ');
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
