// One small line chart per KPI on the results page: the day's value, and the baseline where there is one.
(function () {
  'use strict';
  const dataEl = document.getElementById('chart-data');
  if (!dataEl || typeof Chart === 'undefined') return;
  const charts = JSON.parse(dataEl.textContent);
  const labels = JSON.parse(document.getElementById('chart-labels').textContent);
  charts.forEach(c => {
    const canvas = document.getElementById(c.id);
    if (!canvas) return;
    const datasets = [{ label: labels.value, data: c.values, borderColor: '#1f6feb', backgroundColor: 'rgba(31,111,235,.15)',
      fill: true, tension: 0.2, pointRadius: c.values.length > 40 ? 0 : 3 }];
    if (c.baselines.length) {
      datasets.push({ label: labels.baseline, data: c.baselines, borderColor: '#8c96a1', borderDash: [5, 4],
        pointRadius: 0, fill: false, spanGaps: true });
    }
    new Chart(canvas, {
      type: 'line',
      data: { labels: c.dates, datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: datasets.length > 1, labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: ctx => `${ctx.dataset.label}: ${ctx.formattedValue} ${c.unit || ''}` } } },
        scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true, ticks: { maxTicksLimit: 5 } } },
      },
    });
  });
})();
