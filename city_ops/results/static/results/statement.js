// The Statement page's charts: one per agent over the period, one headline at a time (each has its own
// unit), the agent's daily value against its baseline. The select above a chart switches the headline.
(function () {
  'use strict';
  const dataEl = document.getElementById('statement-charts');
  if (!dataEl || typeof Chart === 'undefined') return;
  const charts = JSON.parse(dataEl.textContent);
  const labels = JSON.parse(document.getElementById('statement-chart-labels').textContent);

  function datasets(series) {
    const out = [{ label: labels.value, data: series.values, borderColor: '#1f6feb',
      backgroundColor: 'rgba(31,111,235,.12)', fill: true, tension: 0.2, spanGaps: false,
      pointRadius: series.values.length > 40 ? 0 : 2 }];
    if (series.baselines.length) {
      out.push({ label: labels.baseline, data: series.baselines, borderColor: '#8c96a1', borderDash: [5, 4],
        pointRadius: 0, fill: false, spanGaps: true });
    }
    return out;
  }

  charts.forEach(c => {
    const canvas = document.getElementById(c.id);
    if (!canvas) return;
    let series = c.series[0];
    const chart = new Chart(canvas, {
      type: 'line',
      data: { labels: c.dates, datasets: datasets(series) },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: ctx => `${ctx.dataset.label}: ${ctx.formattedValue} ${series.unit || ''}` } } },
        scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true, ticks: { maxTicksLimit: 5 } } },
      },
    });
    const select = document.querySelector(`select[data-chart="${c.id}"]`);
    if (select) {
      select.addEventListener('change', () => {
        series = c.series[Number(select.value)];
        chart.data.datasets = datasets(series);
        chart.update();
      });
    }
  });
})();
