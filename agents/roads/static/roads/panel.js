// The road inspection panel's map: the road network as base layer, segments coloured by condition index,
// defects as dots coloured (and sized) by severity, potholes and cracks told apart by their rim. `#roads-map[data-loaded]` lists the layers on the map.
(function () {
  'use strict';
  const el = document.getElementById('roads-map');
  if (!el || typeof L === 'undefined') return;
  const map = L.map(el, { preferCanvas: true, zoomSnap: 0.25 });
  window.roadsMap = map;
  L.control.scale({ imperial: false }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  if (el.dataset.attribution) map.attributionControl.addAttribution(el.dataset.attribution);
  const b = (el.dataset.bounds || '').split(',').map(Number);
  if (b.length === 4 && b.every(Number.isFinite)) map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8] });
  else map.setView([60.1675, 24.9427], 14);
  ['base', 'condition', 'defects'].forEach((name, i) => { map.createPane(name).style.zIndex = String(340 + i * 60); });
  const layers = {};
  function esc(v) {
    return String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }
  function loaded() { el.dataset.loaded = Object.keys(layers).filter(k => map.hasLayer(layers[k])).sort().join(','); }
  async function get(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }
  const major = { motorway: 1, trunk: 1, primary: 1, secondary: 1, tertiary: 1 };
  get(el.dataset.roads).then(data => {
    layers.roads = L.geoJSON(data, { pane: 'base', renderer: L.canvas({ pane: 'base' }),
      style: f => ({ color: major[f.properties.class] ? '#8c96a1' : '#b8c0c8', weight: major[f.properties.class] ? 2.5 : 1.2, opacity: 0.9 }) }).addTo(map);
    loaded();
  }).catch(e => console.error(e));
  const cond = document.getElementById('show-condition');
  get(el.dataset.conditions).then(data => {
    layers.condition = L.geoJSON(data, { pane: 'condition', renderer: L.canvas({ pane: 'condition' }),
      style: f => ({ color: f.properties.color, weight: 6, opacity: 0.75 }),
      onEachFeature: (f, l) => l.bindPopup(`<b>${esc(f.properties.title)}</b><br>condition ${esc(f.properties.condition)} · ${esc(f.properties.open_defects)} open`) });
    if (!cond || cond.checked) layers.condition.addTo(map);
    loaded();
  }).catch(e => console.error(e));
  if (cond) cond.addEventListener('change', () => { if (!layers.condition) return; cond.checked ? layers.condition.addTo(map) : map.removeLayer(layers.condition); loaded(); });
  // Defects: a pothole is a solid dot, a crack a dot with a dashed dark rim; the class boxes of the legend
  // (input[data-show-class]) show or hide each class.
  const classBoxes = Array.from(document.querySelectorAll('input[data-show-class]'));
  function shownClasses() { return new Set(classBoxes.filter(c => c.checked).map(c => c.dataset.showClass)); }
  function drawDefects(data) {
    if (layers.defects) map.removeLayer(layers.defects);
    const shown = shownClasses();
    layers.defects = L.geoJSON(data, { pane: 'defects',
      filter: f => !classBoxes.length || shown.has(f.properties.class),
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { pane: 'defects', radius: 4 + 2 * (f.properties.severity_level || 1),
        color: f.properties.class === 'crack' ? '#1f2933' : '#fff', dashArray: f.properties.class === 'crack' ? '3 2' : null,
        weight: 2, fillColor: f.properties.color, fillOpacity: 0.95 }),
      onEachFeature: (f, l) => {
        const p = f.properties;
        l.bindPopup(`<b>${esc(p.title)}</b> <span class="sev sev-${esc(p.severity_level)}">${esc(p.severity)}</span><br>${esc(p.road || '')}<br>score ${esc(p.priority_score)} · ${esc(p.sightings)} sighting(s) · ${esc(p.status)}<br><a href="${esc(p.url)}">→ details</a>`);
      } }).addTo(map);
    el.dataset.defectCount = String(layers.defects.getLayers().length);
    loaded();
  }
  get(el.dataset.defects).then(data => {
    drawDefects(data);
    classBoxes.forEach(c => c.addEventListener('change', () => drawDefects(data)));
  }).catch(e => console.error(e));

  // Camera runs still in progress: refresh their counters every few seconds.
  document.querySelectorAll('li[data-run]').forEach(li => {
    if (li.dataset.status === 'done') return;
    const tick = async () => {
      try {
        const s = await get(li.dataset.progressUrl);
        li.dataset.status = s.status;
        li.querySelector('progress').value = s.progress_pct;
        li.querySelector('.run-pct').textContent = s.progress_pct;
        li.querySelector('.run-status').textContent = s.status;
        const x = li.querySelector('.run-processed'), f = li.querySelector('.run-defects');
        if (x) x.textContent = s.processed;
        if (f) f.textContent = s.defects;
        if (s.status === 'done') return;
      } catch (e) { console.error(e); }
      if (!document.hidden) setTimeout(tick, 5000); else setTimeout(tick, 15000);
    };
    setTimeout(tick, 5000);
  });
})();
