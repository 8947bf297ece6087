/**
 * The page's own script, as plain browser JavaScript (kept as text so no
 * TypeScript transform can leave helpers in it). Reads `series` (embedded by
 * html.ts) and draws three charts against the number of writers.
 */
export const chartsScript = `
(function () {
  Chart.defaults.font.size = 14;
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
        plugins: {
          title: { display: true, text: title, font: { size: 15 } },
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => items[0].raw.writers + ' writers' } },
        },
        scales: { x: writersAxis, y: Object.assign({ title: { display: true, text: yTitle } }, yScale) },
      },
    });
  }
  // Each series is shifted sideways by a few percent (the axis is logarithmic), so that series with
  // the same values at the same number of writers (raw and repo both at 100%) do not hide each other;
  // at most about ±12% whatever the number of series.
  const step = Math.min(0.025, 0.1 / series.length);
  const shift = (i) => Math.pow(10, (i - (series.length - 1) / 2) * step);
  const isRaw = (s) => s.target === 'raw';
  function line(s, label, pick) {
    const i = series.indexOf(s);
    return {
      label: s.label + label,
      data: s.points.map((p) => ({ x: p.writers * shift(i), y: pick(p), writers: p.writers })),
      borderColor: s.color,
      backgroundColor: s.color,
      // raw: large triangles; repo: smaller circles, drawn on top.
      pointStyle: isRaw(s) ? 'triangle' : 'circle',
      pointRadius: isRaw(s) ? 7 : 4.5,
      order: isRaw(s) ? 2 : 1,
      clip: 10,
    };
  }
  // Stored rows over the acknowledged line (raw: large hollow diamonds, repo: crosses): a gap between the two is a loss.
  function marks(s, label, pick) {
    return Object.assign(line(s, label, pick), {
      showLine: false,
      pointStyle: isRaw(s) ? 'rectRot' : 'crossRot',
      pointRadius: isRaw(s) ? 10 : 7,
      borderWidth: 2,
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
