// The sanitation panel: the road network as base layer, bins coloured by forecast fill, the plan's routes per
// truck; one load/time chart per route (litres and kilograms on board against the clock). `#san-map[data-loaded]`
// lists the layers drawn, for people and tests.
(function () {
  'use strict';
  const el = document.getElementById('san-map');
  if (el && typeof L !== 'undefined') {
    const map = L.map(el, { preferCanvas: true });
    window.sanitationMap = map;
    const layers = {};
    window.sanitationLayers = layers;
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    map.attributionControl.addAttribution('© OpenStreetMap contributors');
    map.setView([60.1675, 24.9427], 14);
    const loaded = [];
    const mark = name => { loaded.push(name); el.dataset.loaded = loaded.slice().sort().join(','); };
    const esc = v => String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
    const popup = (f, layer) => {
      const p = f.properties || {};
      const rows = Object.entries(p).filter(([k, v]) => v !== null && k !== 'color' && typeof v !== 'object')
        .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
      layer.bindPopup(`<table class="popup">${rows}</table>`);
    };
    const get = url => fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(r => { if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`); return r.json(); });

    get(el.dataset.roadsUrl).then(data => {
      const roads = layers.roads = L.geoJSON(data, { style: () => ({ color: '#9aa4ae', weight: 1.2, opacity: 0.8 }), interactive: false }).addTo(map);
      roads.bringToBack();
      if (!map._fitted && roads.getBounds().isValid()) map.fitBounds(roads.getBounds(), { padding: [6, 6] });
      mark('roads');
    }).catch(e => console.error(e));
    get(el.dataset.routesUrl).then(data => {
      const routes = layers.routes = L.geoJSON(data, {
        style: f => ({ color: f.properties.color, weight: 4, opacity: 0.85, dashArray: f.properties.locked ? '8 5' : null }),
        onEachFeature: popup,
      }).addTo(map);
      if (routes.getBounds().isValid()) { map.fitBounds(routes.getBounds(), { padding: [10, 10] }); map._fitted = true; }
      mark('routes');
    }).catch(e => console.error(e));
    get(el.dataset.binsUrl).then(data => {
      layers.bins = L.geoJSON(data, {
        pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5, weight: 1, color: '#fff', fillColor: f.properties.color, fillOpacity: 0.95 }),
        onEachFeature: popup,
      }).addTo(map);
      mark('bins');
    }).catch(e => console.error(e));
  }

  const chartsEl = document.getElementById('route-charts');
  if (!chartsEl || typeof Chart === 'undefined') return;
  JSON.parse(chartsEl.textContent).forEach(c => {
    const canvas = document.getElementById(`profile-${c.id}`);
    if (!canvas || !c.points.length) return;
    const hhmm = t => t.slice(11, 16);
    new Chart(canvas, {
      type: 'line',
      data: {
        labels: c.points.map(p => hhmm(p.t)),
        datasets: [
          { label: 'litres on board', data: c.points.map(p => p.l), borderColor: c.color, backgroundColor: c.color + '33',
            fill: true, stepped: 'before', pointRadius: 0, yAxisID: 'y' },
          { label: 'kg on board', data: c.points.map(p => p.kg), borderColor: '#5f6b78', borderDash: [4, 3],
            stepped: 'before', pointRadius: 0, yAxisID: 'y1' },
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { labels: { boxWidth: 10 } },
          tooltip: { callbacks: { title: items => `${items[0].label} · ${c.points[items[0].dataIndex].label}` } } },
        scales: {
          x: { ticks: { maxTicksLimit: 8 } },
          y: { beginAtZero: true, suggestedMax: c.capacity_l, title: { display: true, text: 'L' } },
          y1: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'kg' } },
        },
      },
    });
  });
})();
