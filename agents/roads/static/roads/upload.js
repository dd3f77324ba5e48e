// The crews' upload page: "use my position" fills lat/lon from the phone (location_source=phone); tapping the
// map drops a pin (location_source=pin, which wins over the photo's own GPS). Without JavaScript the form
// still posts; the server then relies on the photos' EXIF GPS.
(function () {
  'use strict';
  const f = id => document.getElementById(id);
  const state = f('position-state');
  const set = (lat, lon, acc, source) => {
    f('id_lat').value = lat.toFixed(7); f('id_lon').value = lon.toFixed(7);
    f('id_accuracy').value = acc != null ? Math.round(acc) : ''; f('id_location_source').value = source;
  };
  let marker = null, map = null;
  const el = f('pin-map');
  if (el && typeof L !== 'undefined') {
    map = L.map(el, { preferCanvas: true, zoomSnap: 0.25 });
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    window.pinMap = map;
    if (el.dataset.attribution) map.attributionControl.addAttribution(el.dataset.attribution);
    const b = (el.dataset.bounds || '').split(',').map(Number);
    if (b.length === 4 && b.every(Number.isFinite)) map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
    else map.setView([60.1675, 24.9427], 14);
    fetch(el.dataset.roads, { credentials: 'same-origin' }).then(r => r.ok ? r.json() : null).then(d => {
      if (d) L.geoJSON(d, { style: { color: '#8c96a1', weight: 1.5 } }).addTo(map);
    }).catch(() => {});
    map.on('click', e => {
      if (marker) marker.setLatLng(e.latlng); else marker = L.marker(e.latlng).addTo(map);
      set(e.latlng.lat, e.latlng.lng, null, 'pin');
      state.textContent = `Pin: ${e.latlng.lat.toFixed(5)}, ${e.latlng.lng.toFixed(5)}`;
    });
  }
  const btn = f('use-position');
  if (btn) btn.addEventListener('click', () => {
    if (!navigator.geolocation) { state.textContent = 'This phone gives no position; drop a pin instead.'; return; }
    state.textContent = '…';
    navigator.geolocation.getCurrentPosition(pos => {
      const { latitude: lat, longitude: lon, accuracy } = pos.coords;
      set(lat, lon, accuracy, 'phone');
      state.textContent = `Position: ${lat.toFixed(5)}, ${lon.toFixed(5)} (±${Math.round(accuracy)} m)`;
      if (map) { map.setView([lat, lon], 17); if (marker) marker.setLatLng([lat, lon]); else marker = L.marker([lat, lon]).addTo(map); }
    }, err => { state.textContent = `No position (${err.message}); drop a pin instead.`; },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  });
  // A photo without EXIF time gets the phone's clock at the moment it is chosen.
  const files = f('id_image');
  if (files) files.addEventListener('change', () => { f('id_taken_at').value = new Date().toISOString(); });
})();
