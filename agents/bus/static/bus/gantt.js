// The day's vehicle plan as a Gantt chart: one row per block (bus), one floating bar per trip, coloured by
// route (Chart.js horizontal floating bars). Each dataset holds the k-th trip of every block, drawn
// ungrouped so they share the block's row. `window.busGantt` is the chart (tests read its rows).
(function () {
  'use strict';
  const source = document.getElementById('gantt-data');
  const canvas = document.getElementById('gantt');
  if (!source || !canvas || typeof Chart === 'undefined') return;
  const data = JSON.parse(source.textContent);
  const rows = data.rows || [];
  const palette = ['#0b7a75', '#1f6feb', '#e8710a', '#8a3ffc', '#b3261e', '#137333', '#a142f4', '#c26401',
    '#00796b', '#5f6368', '#d01884', '#3949ab'];
  const colour = {};
  (data.routes || []).forEach((r, i) => { colour[r] = palette[i % palette.length]; });
  const depth = rows.reduce((m, r) => Math.max(m, r.trips.length), 0);
  let lo = 24, hi = 0;
  rows.forEach(r => r.trips.forEach(t => { lo = Math.min(lo, t.start); hi = Math.max(hi, t.end); }));
  const datasets = [];
  for (let k = 0; k < depth; k++) {
    datasets.push({
      label: `trip ${k + 1}`,
      data: rows.map(r => (r.trips[k] ? [r.trips[k].start, r.trips[k].end] : null)),
      trips: rows.map(r => r.trips[k] || null),
      backgroundColor: rows.map(r => (r.trips[k] ? colour[r.trips[k].route] || '#5f6368' : 'transparent')),
      borderColor: '#ffffff', borderWidth: 1, borderSkipped: false, grouped: false,
      barPercentage: 0.9, categoryPercentage: 0.9,
    });
  }
  const clock = h => {
    const m = Math.round(h * 60);
    return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  };
  canvas.parentElement.style.height = `${Math.max(160, rows.length * 18 + 70)}px`;
  window.busGantt = new Chart(canvas, {
    type: 'bar',
    data: { labels: rows.map(r => `${r.block}${r.vehicle ? ' · ' + r.vehicle : ''}${r.locked ? ' 🔒' : ''}`), datasets },
    options: {
      indexAxis: 'y', responsive: true, maintainAspectRatio: false, animation: false,
      scales: {
        x: { type: 'linear', min: Math.floor(lo), max: Math.ceil(hi), ticks: { stepSize: 1, callback: v => clock(v) },
          title: { display: true, text: data.axis || 'time of day' } },
        y: { ticks: { autoSkip: false, font: { size: 11 } } },
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: ctx => {
          const t = ctx.dataset.trips[ctx.dataIndex];
          return t ? `${t.key} (route ${t.route}) ${clock(t.start)}–${clock(t.end)}` : '';
        } } },
      },
    },
  });
  const legend = document.getElementById('gantt-legend');
  if (legend) {
    // Built as elements, the colour set through the CSSOM: the page's CSP blocks style= attributes.
    legend.replaceChildren(...(data.routes || []).flatMap((r, i) => {
      const kpi = document.createElement('span');
      const swatch = document.createElement('span');
      kpi.className = 'kpi';
      swatch.className = 'gantt-swatch';
      swatch.style.background = colour[r];
      kpi.append(swatch, ` ${r}`);
      return i ? [' ', kpi] : [kpi];
    }));
  }
})();
