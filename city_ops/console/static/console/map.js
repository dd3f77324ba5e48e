// The console map: the road network itself is the base layer when no tile server is configured (the city
// may run offline); every other layer is GeoJSON from /api/, toggled from the sidebar.
(function () {
  const el = document.getElementById('map');
  if (!el || typeof L === 'undefined') return;
  const map = L.map(el, { preferCanvas: true });
  window.cityMap = map;
  const tileUrl = el.dataset.tileUrl;
  if (tileUrl) L.tileLayer(tileUrl, { attribution: el.dataset.tileAttribution || '' }).addTo(map);
  const b = (el.dataset.bounds || '').split(',').map(Number);
  if (b.length === 4 && b.every(isFinite)) map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  else map.setView([60.17, 24.94], 14);
  const roadWeight = { motorway: 5, trunk: 4, primary: 4, secondary: 3, tertiary: 2.5, residential: 1.5, service: 1 };
  const styles = {
    roads: f => ({ color: '#6b7785', weight: roadWeight[f.properties.class] || 1.5, opacity: 0.9 }),
    closures: () => ({ color: '#d0021b', weight: 6, opacity: 0.9, fillOpacity: 0.3 }),
    districts: () => ({ color: '#1f6feb', weight: 1, dashArray: '4 4', fillOpacity: 0.04 }),
  };
  const layers = {};
  window.cityLayers = layers;
  function popup(feature, layer) {
    const p = feature.properties || {};
    const rows = Object.entries(p).filter(([, v]) => v !== null && v !== '' && typeof v !== 'object')
      .map(([k, v]) => `<tr><th>${k}</th><td>${String(v).replace(/</g, '&lt;')}</td></tr>`).join('');
    if (rows) layer.bindPopup(`<table>${rows}</table>`);
  }
  async function load(id, url) {
    const resp = await fetch(url, { credentials: 'same-origin' });
    if (!resp.ok) throw new Error(`${url}: ${resp.status}`);
    const data = await resp.json();
    const style = styles[id] || (f => ({ color: (f.properties && f.properties.color) || '#8a3ffc', weight: 2 }));
    return L.geoJSON(data, {
      style,
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 5, color: (f.properties && f.properties.color) || '#8a3ffc', fillOpacity: 0.8 }),
      onEachFeature: popup,
    });
  }
  document.querySelectorAll('.layer-toggle').forEach(box => {
    const id = box.dataset.layer;
    const sync = async () => {
      if (box.checked) {
        if (!layers[id]) {
          try { layers[id] = await load(id, box.dataset.url); }
          catch (e) { console.error(e); box.parentElement.classList.add('error'); return; }
        }
        layers[id].addTo(map);
        if (id === 'roads') layers[id].bringToBack();
      } else if (layers[id]) { map.removeLayer(layers[id]); }
      el.dataset.loaded = Object.keys(layers).filter(k => map.hasLayer(layers[k])).sort().join(',');
    };
    box.addEventListener('change', sync);
    sync();
  });
})();
