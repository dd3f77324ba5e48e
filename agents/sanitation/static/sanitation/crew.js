// The crew's route on a phone: the road geometry and the numbered stops (done ones greyed).
(function () {
  'use strict';
  const dataEl = document.getElementById('crew-routes');
  if (!dataEl || typeof L === 'undefined') return;
  JSON.parse(dataEl.textContent).forEach(r => {
    const el = document.getElementById(`crew-map-${r.id}`);
    if (!el) return;
    const map = L.map(el, { preferCanvas: true });
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    map.attributionControl.addAttribution('© OpenStreetMap contributors');
    const line = L.polyline(r.line, { color: r.color, weight: 5, opacity: 0.85 }).addTo(map);
    r.stops.forEach(s => {
      // An element, its colour set through the CSSOM: the page's CSP blocks style= attributes in HTML.
      const badge = document.createElement('span');
      badge.className = 'stop-badge';
      badge.style.background = s.done ? '#8c96a1' : (s.kind === 'disposal' ? '#5f6b78' : r.color);
      badge.textContent = s.order;
      const icon = L.divIcon({ className: 'stop-icon', html: badge, iconSize: [20, 20] });
      L.marker([s.lat, s.lon], { icon }).addTo(map).bindPopup(`${s.order}. ${s.label}`)
        .on('click', () => { const li = document.getElementById(`stop-${s.id}`); if (li) li.scrollIntoView({ behavior: 'smooth' }); });
    });
    if (line.getBounds().isValid()) map.fitBounds(line.getBounds(), { padding: [10, 10] });
    el.dataset.loaded = 'route';
  });
})();
