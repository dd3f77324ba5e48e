// The runs page while a run is queued or running: reload every 10 s to follow it, but never while
// someone is filling in the start form.
(function tick() {
  'use strict';
  setTimeout(function () {
    const form = document.getElementById('run-start-form');
    if (form && form.contains(document.activeElement) && document.activeElement !== document.body) tick();
    else location.reload();
  }, 10000);
})();
