/**
 * `--chaos kill`: half of the writers (at least one) are chosen to die, each
 * after a random number of its rows, from 1 to half of them, have had an
 * outcome. The kill is a SIGKILL sent when the writer reports that row, so it
 * lands wherever the writer has got to by then: between two inserts, inside a
 * commit, or between a commit and its acknowledgement. Within the first half:
 * the harness hears of a row after the writer has moved on, and a kill meant
 * for one of the last rows could land once the writer had finished them all.
 */
export function chooseVictims(writers: number, rowsPerWriter: number, random = Math.random): Map<number, number> {
  const indexes = Array.from({ length: writers }, (_, i) => i);
  // Fisher-Yates, then the first half are the victims.
  for (let i = indexes.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [indexes[i], indexes[j]] = [indexes[j] as number, indexes[i] as number];
  }
  const victims = new Map<number, number>();
  for (const index of indexes.slice(0, Math.max(1, Math.floor(writers / 2)))) {
    victims.set(index, 1 + Math.floor(random() * Math.max(1, Math.floor(rowsPerWriter / 2))));
  }
  return victims;
}
