/**
 * For the command-line programs (`pnpm harness`, `pnpm bench`): when the event
 * loop empties while a call is still pending (a promise that never settles),
 * Node exits quietly with code 0. Say so and exit 1 instead. A program that set
 * its exit code, or called `process.exit`, is left alone.
 */
export function failIfEndedEarly(name: string): void {
  process.on('exit', () => {
    if (process.exitCode !== undefined) return;
    process.stderr.write(`${name}: stopped before the end: the event loop ran empty with a call still pending\n`);
    process.exitCode = 1;
  });
}
