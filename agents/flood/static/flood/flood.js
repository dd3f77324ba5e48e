// The flood panel: roads as the base layer (no third-party tiles), flood zones coloured by level, active
// closures, sensors coloured by state; clicking a sensor draws its hydrograph with its thresholds (Chart.js).
// A drill's picture (its zones and sensors as the drill sees them) is a layer group of its own over the live
// layers, dashed in the drill's purple and marked DRILL, with a toggle and a legend; the live layers stay as
// they are. `#flood-map[data-loaded]` lists the layers on the map, `[data-drill-zones]` / `[data-drill-sensors]`
// what the drill's picture shows, and `#hydrograph[data-sensor]` the sensor charted, so people and tests can
// see what is drawn.
(function () {
  'use strict';
  const el = document.getElementById('flood-map');
  if (!el || typeof L === 'undefined') return;
  const colours = JSON.parse(document.getElementById('flood-level-colours').textContent);

  const map = L.map(el, { preferCanvas: true });
  window.floodMap = map;
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  if (el.dataset.tileUrl) {
    L.tileLayer(el.dataset.tileUrl, { attribution: el.dataset.tileAttribution || '', maxZoom: 19 }).addTo(map);
  } else if (el.dataset.attribution) {
    map.attributionControl.addAttribution(el.dataset.attribution);
  }
  const b = (el.dataset.bounds || '').split(',').map(Number);
  // The city's extent (its road network): the map opens on it and never zooms out past it to features abroad.
  const city = b.length === 4 && b.every(Number.isFinite) ? L.latLngBounds([[b[1], b[0]], [b[3], b[2]]]) : null;
  if (city) map.fitBounds(city, { padding: [8, 8] });
  else map.setView([60.1715, 24.945], 15);
  // the drill's zones over the live ones, its sensors as rings round the live dots (which stay on top)
  const panes = { zones: 330, drillZones: 335, roads: 340, closures: 450, drillSensors: 455, sensors: 460 };
  const renderers = {};
  Object.entries(panes).forEach(([name, z]) => {
    map.createPane(name).style.zIndex = String(z);
    renderers[name] = L.canvas({ pane: name, tolerance: 5 });
  });
  const loaded = new Set();
  function mark(id) { loaded.add(id); el.dataset.loaded = Array.from(loaded).sort().join(','); }
  function esc(v) {
    return String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }
  async function getJSON(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }
  const layers = {};
  const sources = {};  // each layer's last GeoJSON: the drill's picture reuses the zones' and sensors' geometry
  async function load(id, url, options) {
    try {
      const data = await getJSON(url);
      if (layers[id]) map.removeLayer(layers[id]);
      layers[id] = L.geoJSON(data, options).addTo(map);
      sources[id] = data;
      mark(id);
      if (id === 'zones' || id === 'sensors') drillDraw();
    } catch (e) { console.error(e); }
  }

  // --- the drill's picture ------------------------------------------------------------------------------
  // Its words come translated in #drill-map-words, its data from the drill status (on the page, then polled).
  const words = (document.getElementById('drill-map-words') || { dataset: {} }).dataset;
  const initial = document.getElementById('flood-drill-state');
  const drillGroup = L.layerGroup();
  const DRILL = '#6f42c1';
  let drill = initial ? JSON.parse(initial.textContent) : null;
  let drillLegend = null;
  let drawn = {};  // what the layers were last drawn from: redrawn only when it changes (an open tooltip stays)
  function drillLayers() {
    const zoneOf = new Map(drill.map.zones.map(z => [z.code, z]));
    const sensorOf = new Map(drill.map.sensors.map(s => [s.code, s]));
    const only = (data, of) => ({ type: 'FeatureCollection',
      features: data.features.filter(f => of.has(f.properties.code)) });
    drillGroup.clearLayers();
    L.geoJSON(only(sources.zones, zoneOf), { pane: 'drillZones', renderer: renderers.drillZones,
      style: f => {
        const z = zoneOf.get(f.properties.code);
        return { color: DRILL, weight: 3, dashArray: '8 6', fillColor: z.color,
          fillOpacity: z.level === 'none' ? 0.06 : 0.45 };
      },
      onEachFeature: (f, layer) => layer.bindTooltip(`<b>${esc(words.drill)}</b> · ${esc(f.properties.name)} · ` +
        `${esc(zoneOf.get(f.properties.code).level_label)}`) }).addTo(drillGroup);
    L.geoJSON(only(sources.sensors, sensorOf), {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { pane: 'drillSensors', renderer: renderers.drillSensors,
        radius: 14, weight: 2, color: DRILL, dashArray: '4 3', fillColor: sensorOf.get(f.properties.code).color,
        fillOpacity: 0.95 }),
      onEachFeature: (f, layer) => layer.bindTooltip(`<b>${esc(words.drill)}</b> · ${esc(f.properties.code)} · ` +
        `${esc(sensorOf.get(f.properties.code).state_label)}`) }).addTo(drillGroup);
  }
  function drillDraw(d) {
    if (d) drill = d;
    if (!drill || !drill.map || !sources.zones || !sources.sensors) return;
    const zones = drill.map.zones.map(z => `${z.code}:${z.level}`).join(' ');
    const sensors = drill.map.sensors.map(s => `${s.code}:${s.state}`).join(' ');
    if (drawn.zones !== zones || drawn.sensors !== sensors || drawn.zoneData !== sources.zones ||
        drawn.sensorData !== sources.sensors) {
      drillLayers();
      drawn = { zones, sensors, zoneData: sources.zones, sensorData: sources.sensors };
      el.dataset.drillZones = zones;
      el.dataset.drillSensors = sensors;
    }
    if (!drillLegend) {
      // a toggle of its own, so a dispatcher can look at the live picture alone; on while the drill is shown
      const name = `<span class="drill-badge">${esc(words.drill)}</span> ${esc(words.layer)}`;
      L.control.layers(null, { [name]: drillGroup }, { collapsed: false, position: 'topright' }).addTo(map);
      drillLegend = L.control({ position: 'bottomleft' });
      drillLegend.onAdd = () => L.DomUtil.create('div', 'drill-legend');
      drillLegend.addTo(map);
      drillGroup.addTo(map);
      map.on('overlayadd overlayremove', e => {
        if (e.layer === drillGroup) drillLegend.getContainer().hidden = e.type === 'overlayremove';
      });
    }
    const clock = drill.clock.slice(0, 16).replace('T', ' ');
    drillLegend.getContainer().innerHTML = `<span class="drill-badge">${esc(words.drill)}</span> ` +
      `<b>${esc(drill.name)}</b> · ${esc(drill.status_label)} · ${esc(clock)} UTC` +
      `<br><small>${esc(words.note)}</small>`;
    mark('drill');
  }
  window.floodDrillDraw = drillDraw;
  function roads() {
    return load('roads', el.dataset.roads, { pane: 'roads', renderer: renderers.roads,
      style: f => ({ color: '#8c96a1', weight: ['primary', 'secondary', 'trunk'].includes(f.properties.class) ? 3 : 1.4,
        opacity: 0.9 }) });
  }
  function zones() {
    return load('zones', el.dataset.zones, { pane: 'zones', renderer: renderers.zones,
      style: f => ({ color: f.properties.color, weight: 2, fillColor: f.properties.color,
        fillOpacity: f.properties.level === 'none' ? 0.12 : 0.35, dashArray: f.properties.standby ? '6 4' : null }),
      onEachFeature: (f, layer) => layer.bindPopup(`<b>${esc(f.properties.name)}</b><br>${esc(f.properties.kind)} · ` +
        `${esc(f.properties.level)}${f.properties.standby ? ' · standby' : ''}`) });
  }
  function closures() {
    return load('closures', el.dataset.closures, { pane: 'closures', renderer: renderers.closures,
      style: () => ({ color: '#d0021b', weight: 6, dashArray: '10 6', fillColor: '#d0021b', fillOpacity: 0.3 }),
      onEachFeature: (f, layer) => layer.bindPopup(`⛔ ${esc(f.properties.reason)}`) });
  }
  function sensors() {
    return load('sensors', el.dataset.sensors, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { pane: 'sensors', renderer: renderers.sensors, radius: 8,
        weight: 2, color: '#fff', fillColor: f.properties.color, fillOpacity: 0.95 }),
      onEachFeature: (f, layer) => {
        layer.bindTooltip(`${esc(f.properties.code)} · ${esc(f.properties.status)} · ${esc(f.properties.level)}` +
          (f.properties.latest ? `<br>${esc(f.properties.latest)}` : ''));
        layer.on('click', () => hydrograph(f.id, f.properties.code));
      } });
  }
  // Start on what the duty room watches: the zones and sensors in the city, not the whole city. A station
  // registered from another basin's agency file (a replay) lies abroad: it stays on the map but is not zoomed
  // to, or one US gauge would open the map on an empty continent.
  const inCity = layer => !city || city.pad(0.1).contains(layer.getBounds ? layer.getBounds() : layer.getLatLng());
  roads().then(zones).then(closures).then(sensors).then(() => {
    const watched = [];
    [layers.zones, layers.sensors].filter(Boolean).forEach(group => group.eachLayer(l => { if (inCity(l)) watched.push(l); }));
    const bounds = watched.length ? L.featureGroup(watched).getBounds() : null;
    if (bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 17 });
  });
  setInterval(() => { if (!document.hidden) { zones(); closures(); sensors(); } }, 60000);

  // --- hydrograph ---------------------------------------------------------------------------------------
  const canvas = document.getElementById('hydrograph');
  let chart = null;
  const hhmm = t => { const d = new Date(t); return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`; };
  async function hydrograph(id, code) {
    if (typeof Chart === 'undefined') return;
    const data = await getJSON(el.dataset.hydrograph.replace('/0/', `/${id}/`));
    const series = data.series[0];
    document.getElementById('hydrograph-title').textContent = `${data.sensor} · ${data.name}`;
    const hint = document.getElementById('hydrograph-hint');
    if (!series) { hint.textContent = 'no series'; return; }
    const name = `${series.label || series.parameter} (${series.unit})`;
    hint.textContent = name + (series.flagged.length ? ` · ${series.flagged.length} flagged by QC` : '');
    const times = Array.from(new Set(series.points.map(p => p.t).concat(series.flagged.map(p => p.t)))).sort();
    const good = new Map(series.points.map(p => [p.t, p.v]));
    const bad = new Map(series.flagged.map(p => [p.t, p.v]));
    const datasets = [{ label: name, data: times.map(t => good.has(t) ? good.get(t) : null),
      borderColor: '#1f6feb', backgroundColor: 'rgba(31,111,235,.12)', fill: true, pointRadius: 0, tension: 0.15, spanGaps: true }];
    if (series.flagged.length) {
      datasets.push({ label: 'QC flagged', data: times.map(t => bad.has(t) ? bad.get(t) : null), showLine: false,
        pointRadius: 4, pointStyle: 'crossRot', borderColor: '#7f7f7f' });
    }
    series.thresholds.forEach(th => datasets.push({ label: `${th.label} ${th.value} ${series.unit}`,
      data: times.map(() => th.value), borderColor: colours[th.level] || '#d0021b', borderDash: [6, 4],
      borderWidth: 1.5, pointRadius: 0, fill: false }));
    if (chart) chart.destroy();
    // a daily series (a statistic such as the daily mean) is labelled by its days, the others by the clock
    const tick = series.statistic ? (t => t.slice(0, 10)) : hhmm;
    chart = new Chart(canvas, { type: 'line', data: { labels: times.map(tick), datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { labels: { boxWidth: 12 } } },
        scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: series.parameter !== 'level' } } } });
    canvas.dataset.sensor = code;
    canvas.dataset.points = String(times.length);
  }
  window.floodHydrograph = hydrograph;
  document.querySelectorAll('.sensor-pick').forEach(btn => btn.addEventListener('click',
    () => hydrograph(btn.dataset.sensor, btn.dataset.code)));
  const first = document.querySelector('.sensor-pick');
  if (first) hydrograph(first.dataset.sensor, first.dataset.code);
})();

// --- drills: while a drill runs, its replayed clock, progress and alert log follow it (polled) ------------
// `#flood-drill[data-status]` says where the drill is, so people and tests can see it move.
(function () {
  'use strict';
  const box = document.getElementById('flood-drill');
  if (!box || !box.dataset.url) return;
  const $ = id => document.getElementById(id);
  const esc = v => String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const utc = iso => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
  const list = $('drill-events');
  const empty = list.innerHTML;
  function show(d) {
    box.dataset.status = d.status;
    $('drill-clock').textContent = utc(d.clock);
    $('drill-clock').setAttribute('datetime', d.clock);
    $('drill-progress').value = d.progress;
    $('drill-status').textContent = d.status_label;
    $('drill-ticks').textContent = d.ticks;
    if (d.error) { $('drill-error').textContent = d.error; $('drill-error').hidden = false; }
    $('drill-actions').hidden = !['running', 'paused'].includes(d.status);
    $('drill-actions').querySelectorAll('form').forEach(f => { f.hidden = !f.dataset.when.split(' ').includes(d.status); });
    if (window.floodDrillDraw) window.floodDrillDraw(d);
    if (d.events.length !== list.querySelectorAll('li[data-seq]').length) {
      list.innerHTML = d.events.slice().reverse().map(e => `<li class="level-${esc(e.level)}" data-seq="${esc(e.seq)}">` +
        `<small>${esc(e.time.slice(11, 16))}</small> <span class="level-pill level-${esc(e.level)}">${esc(e.level_label)}</span> ` +
        `${esc(e.kind_label)} · ${esc(e.zone)}</li>`).join('') || empty;
    }
  }
  async function poll() {
    try {
      const r = await fetch(box.dataset.url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!r.ok) throw new Error(`${box.dataset.url}: HTTP ${r.status}`);
      show(await r.json());
    } catch (e) { console.error(e); }
    if (['running', 'paused'].includes(box.dataset.status)) setTimeout(poll, 1000);
  }
  if (['running', 'paused'].includes(box.dataset.status)) setTimeout(poll, 500);
})();
