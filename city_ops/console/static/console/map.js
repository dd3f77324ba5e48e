// The console map. The road network itself is the base layer when no tile server is configured (the city
// may run offline, and no third-party tiles are fetched); every other layer comes from the server, toggled
// from the sidebar: as vector tiles where the server tiles it (data-tiles), else as GeoJSON.
// `#map[data-loaded]` lists the layers currently on the map, sorted, so people and tests can see what is drawn.
(function () {
  'use strict';
  const el = document.getElementById('map');
  if (!el || typeof L === 'undefined') return;

  const map = L.map(el, { preferCanvas: true, zoomControl: true });
  window.cityMap = map;
  L.control.scale({ imperial: false, position: 'bottomleft' }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  if (el.dataset.tileUrl) {
    L.tileLayer(el.dataset.tileUrl, { attribution: el.dataset.tileAttribution || '', maxZoom: 19 }).addTo(map);
  } else if (el.dataset.attribution) {
    // The road layer is drawn from OSM data: its attribution shows even when tiles are not used.
    map.attributionControl.addAttribution(el.dataset.attribution);
  }
  const b = (el.dataset.bounds || '').split(',').map(Number);
  if (b.length === 4 && b.every(Number.isFinite)) map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8] });
  else map.setView([60.1675, 24.9427], 14);

  // Panes fix the drawing order whatever order the layers arrive in: areas under roads under closures
  // under points. Each pane gets its own canvas.
  const panes = { areas: 330, roads: 340, closures: 450, points: 460 };
  const renderers = {};
  Object.entries(panes).forEach(([name, z]) => {
    map.createPane(name).style.zIndex = String(z);
    renderers[name] = L.canvas({ pane: name, tolerance: 4 });
  });

  const roadWeight = { motorway: 5, trunk: 4.5, primary: 4, secondary: 3.2, tertiary: 2.6, residential: 1.6,
    service: 1, other: 1.2 };
  const roadColor = { motorway: '#3d4752', trunk: '#3d4752', primary: '#4d5866', secondary: '#5d6875',
    tertiary: '#6b7785' };
  const byKind = {
    roads: () => ({ pane: 'roads', style: f => ({
      color: roadColor[f.properties.class] || '#8c96a1', weight: roadWeight[f.properties.class] || 1.4,
      opacity: 0.95, lineCap: 'round' }) }),
    closure: color => ({ pane: 'closures', style: () => ({
      color, weight: 7, opacity: 0.95, dashArray: '10 6', lineCap: 'butt', fillColor: color, fillOpacity: 0.25 }) }),
    area: color => ({ pane: 'areas', style: () => ({
      color, weight: 1.5, dashArray: '5 5', opacity: 0.8, fillColor: color, fillOpacity: 0.05 }) }),
    line: color => ({ pane: 'roads', style: f => ({ color: (f.properties && f.properties.color) || color, weight: 3 }) }),
    point: color => ({ pane: 'points', style: f => ({ color: (f.properties && f.properties.color) || color, weight: 3 }) }),
  };

  const layers = {};
  window.cityLayers = layers;

  function esc(v) {
    return String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }
  function popupHtml(p) {
    const rows = Object.entries(p || {})
      .filter(([k, v]) => v !== null && v !== '' && typeof v !== 'object' && !['color', 'url', 'truncated'].includes(k))
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
    const link = (p && typeof p.url === 'string' && p.url.startsWith('/')) ? `<p><a href="${esc(p.url)}">→ ${esc(p.title || p.url)}</a></p>` : '';
    return (rows || link) ? `<table class="popup">${rows}</table>${link}` : '';
  }
  function popup(feature, layer) {
    const html = popupHtml(feature.properties);
    if (html) layer.bindPopup(html, { maxWidth: 320 });
  }

  function updateLoaded() {
    el.dataset.loaded = Object.keys(layers).filter(k => map.hasLayer(layers[k])).sort().join(',');
  }
  const stateMarks = { loading: '…', error: '⚠', truncated: '✂' };
  function setState(id, state) {
    const s = document.querySelector(`[data-state-for="${id}"]`);
    if (!s) return;
    s.textContent = stateMarks[state] || '';
    s.dataset.state = state;
    s.title = state === 'truncated' ? (el.dataset.truncated || '') : '';
  }

  // Vector tiles (Leaflet.VectorGrid) for the layers the server tiles: they hold at any city size, where one
  // GeoJSON of the whole layer would not. A tile the server's feature cap cut marks its first feature
  // `truncated`, and the sidebar says to zoom in until the tiles in view are whole again.
  // Leaflet 1.9 dropped DomEvent.fakeStop, which VectorGrid 1.3 calls on a click: this is what 1.7 did.
  if (!L.DomEvent.fakeStop) L.DomEvent.fakeStop = e => { e._stopped = true; };
  function tileStyle(id, kind, color) {
    return p => {
      if (p.truncated) setState(id, 'truncated');
      if (kind === 'roads') return { color: roadColor[p.class] || '#8c96a1', weight: roadWeight[p.class] || 1.4, opacity: 0.95 };
      if (kind === 'line') return { color: p.color || color, weight: 3 };
      return { radius: 5, weight: 1.5, color: '#fff', fill: true, fillColor: p.color || color, fillOpacity: 0.9 };
    };
  }
  function tileLayer(box, kind, color) {
    const id = box.dataset.layer;
    const grid = L.vectorGrid.protobuf(box.dataset.tiles, {
      pane: kind === 'roads' || kind === 'line' ? 'roads' : 'points', rendererFactory: L.canvas.tile,
      interactive: true, maxNativeZoom: 18, fetchOptions: { credentials: 'same-origin' },
      vectorTileLayerStyles: { [id]: tileStyle(id, kind, color) },
    });
    grid.on('loading', () => { if (map.hasLayer(grid)) setState(id, 'ok'); });
    grid.on('click', e => {
      const html = popupHtml(e.layer && e.layer.properties);
      if (html) L.popup({ maxWidth: 320 }).setLatLng(e.latlng).setContent(html).openOn(map);
    });
    return grid;
  }

  async function fetchLayer(box) {
    const id = box.dataset.layer;
    const color = box.dataset.color || '#8a3ffc';
    const kind = id === 'roads' ? 'roads' : (box.dataset.kind || 'point');
    if (box.dataset.tiles && L.vectorGrid) return tileLayer(box, kind, color);
    const resp = await fetch(box.dataset.url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(`${box.dataset.url}: HTTP ${resp.status}`);
    const data = await resp.json();
    const opts = (byKind[kind] || byKind.point)(color);
    const group = L.geoJSON(data, {
      pane: opts.pane,
      style: opts.style,
      renderer: renderers[opts.pane],
      pointToLayer: (f, latlng) => L.circleMarker(latlng, {
        pane: 'points', renderer: renderers.points, radius: 6, weight: 2, color: '#fff',
        fillColor: (f.properties && f.properties.color) || color, fillOpacity: 0.9 }),
      onEachFeature: (f, layer) => {
        popup(f, layer);
        // Name the districts on the map itself.
        if (id === 'districts' && f.properties && f.properties.name) {
          layer.bindTooltip(esc(f.properties.name), { permanent: true, direction: 'center', className: 'area-label' });
        }
      },
    });
    if (kind === 'closure') {
      // A closure can be a few metres of road: mark each with a no-entry sign that stays visible when
      // the whole city is on screen. The signs belong to the layer, so toggling it hides them too.
      const signs = [];
      group.eachLayer(l => {
        const at = l.getBounds ? l.getBounds().getCenter() : l.getLatLng();
        const sign = L.marker(at, { pane: 'points', icon: L.divIcon({ className: 'closure-sign', iconSize: [18, 18] }),
          title: (l.feature && l.feature.properties && l.feature.properties.reason) || '' });
        if (l.getPopup()) sign.bindPopup(l.getPopup().getContent());
        signs.push(sign);
      });
      signs.forEach(sign => group.addLayer(sign));
    }
    return group;
  }

  // A link to the map ending in #closure-N (the copilot links the closures it made) shows that closure, once:
  // the layer's refreshes do not pull the map back after the user has moved on.
  let focused = false;
  function focusOnce(group) {
    const wanted = /^#closure-(\d+)$/.exec(window.location.hash);
    if (!wanted || focused) return;
    group.eachLayer(l => {
      if (l.feature && String(l.feature.id) === wanted[1] && l.getBounds) {
        focused = true;
        map.fitBounds(l.getBounds(), { maxZoom: 17 });
        l.openPopup();
      }
    });
  }

  const generation = {};
  async function sync(box, reload) {
    const id = box.dataset.layer;
    const gen = (generation[id] = (generation[id] || 0) + 1);
    if (box.checked) {
      if (!layers[id] || reload) {
        setState(id, 'loading');
        let fresh;
        try { fresh = await fetchLayer(box); } catch (e) {
          console.error(e); setState(id, 'error'); box.closest('li').classList.add('error'); return;
        }
        if (gen !== generation[id]) return; // toggled again while loading: the newer call wins
        if (layers[id]) map.removeLayer(layers[id]);
        layers[id] = fresh;
        box.closest('li').classList.remove('error');
      }
      if (box.checked) {
        layers[id].addTo(map);
        if (box.dataset.kind === 'closure') focusOnce(layers[id]);
      }
      setState(id, 'ok');
    } else if (layers[id]) {
      map.removeLayer(layers[id]);
    }
    updateLoaded();
  }

  document.querySelectorAll('.layer-toggle').forEach(box => {
    box.addEventListener('change', () => sync(box, false));
    sync(box, false);
    const every = Number(box.dataset.refresh || 0);
    // Live layers (closures, open orders) are re-read while shown; others stay as loaded.
    // A tiled layer redraws its tiles in view instead (they last as long as the server's cache says).
    if (every > 0) setInterval(() => {
      if (!box.checked || document.hidden) return;
      if (layers[box.dataset.layer] && layers[box.dataset.layer].redraw) layers[box.dataset.layer].redraw();
      else sync(box, true);
    }, every * 1000);
  });
  window.cityMapReload = id => {
    const box = document.querySelector(`.layer-toggle[data-layer="${id}"]`);
    return box ? sync(box, true) : Promise.resolve();
  };

  document.querySelectorAll('.zoom-to').forEach(btn => btn.addEventListener('click', () => {
    const e = (btn.dataset.extent || '').split(',').map(Number);
    if (e.length === 4 && e.every(Number.isFinite)) map.fitBounds([[e[1], e[0]], [e[3], e[2]]], { maxZoom: 17, padding: [30, 30] });
  }));
})();
