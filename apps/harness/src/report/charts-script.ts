/**
 * The page's own script, as plain browser JavaScript (kept as text so no
 * TypeScript transform can leave helpers in it). Reads `series` (embedded by
 * html.ts) and draws three charts against the number of writers.
 */
export const chartsScript = `
(function () {
  // Ticks at the numbers of writers that were run, not at powers of ten.
  const writerCounts = [...new Set(series.flatMap((s) => s.points.map((p) => p.writers)))].sort((a, b) => a - b);
  const writersAxis = {
    type: 'logarithmic',
    min: writerCounts[0] / 1.3,
    max: writerCounts[writerCounts.length - 1] * 1.3,
    title: { display: true, text: 'simultaneous writers (log scale)' },
    afterBuildTicks: (axis) => {
      axis.ticks = writerCounts.map((value) => ({ value }));
    },
    ticks: { callback: (value) => String(value) },
  };
  function draw(id, title, yTitle, datasets, yScale) {
    new Chart(document.getElementById(id), {
      type: 'line',
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: title }, legend: { display: false } },
        scales: { x: writersAxis, y: Object.assign({ title: { display: true, text: yTitle } }, yScale) },
      },
    });
  }
  function line(s, label, pick) {
    return {
      label: s.label + label,
      data: s.points.map((p) => ({ x: p.writers, y: pick(p) })),
      borderColor: s.color,
      backgroundColor: s.color,
      pointRadius: 3,
      clip: 8,
    };
  }
  // Stored rows as hollow diamonds over the acknowledged line: a gap between the two is a loss.
  function marks(s, label, pick) {
    return Object.assign(line(s, label, pick), {
      showLine: false,
      pointStyle: 'rectRot',
      pointRadius: 6,
      borderWidth: 1.5,
      backgroundColor: 'transparent',
    });
  }
  draw(
    'rows',
    'Rows acknowledged (line) and stored (diamonds)',
    '% of attempted rows',
    series.flatMap((s) => [line(s, ' acked', (p) => p.ackedPct), marks(s, ' stored', (p) => p.storedPct)]),
    { min: 0, max: 100 },
  );
  draw('failed', 'Failed inserts (errors)', 'rows', series.map((s) => line(s, '', (p) => p.failed)), {
    beginAtZero: true,
    ticks: { precision: 0 },
  });
  draw(
    'latency',
    'Slowest inserts: p99 latency',
    'ms (log scale)',
    series.map((s) => line(s, '', (p) => p.p99Ms)),
    { type: 'logarithmic' },
  );
})();
`;
