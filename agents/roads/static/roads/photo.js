// The photo viewer polls its status while the detector works and reloads when the photo is done or failed.
(function () {
  'use strict';
  const el = document.getElementById('photo-viewer');
  if (!el || !el.dataset.refresh) return;
  const tick = async () => {
    try {
      const r = await fetch(el.dataset.statusUrl, { credentials: 'same-origin' });
      if (r.ok) {
        const s = await r.json();
        if (s.status === 'done' || s.status === 'failed') { window.location.reload(); return; }
      }
    } catch (e) { /* offline for a moment: try again */ }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
})();
