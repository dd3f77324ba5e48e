// Behaviour every console page shares, declared in the markup with data- attributes. Why not inline
// handlers (onchange=, onclick=, style=): the Content-Security-Policy allows scripts and styles from this
// site's own files only, and blocks every inline one, so an injected attribute can run nothing.
(function () {
  'use strict';

  // <select data-autosubmit> / <input type=checkbox data-autosubmit>: a filter that applies on change.
  document.addEventListener('change', function (ev) {
    const el = ev.target;
    if (el.matches && el.matches('[data-autosubmit]') && el.form) el.form.submit();
  });

  // <form data-confirm="Cancel this work order?">: asks first.
  document.addEventListener('submit', function (ev) {
    const form = ev.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  }, true);

  // <button data-print>: the browser's print dialog.
  document.addEventListener('click', function (ev) {
    const el = ev.target.closest && ev.target.closest('[data-print]');
    if (el) window.print();
  });

  // Colours and aspect ratios that come from data: set through the CSSOM (which the policy allows), not
  // through style= attributes (which it blocks). data-c gives the --c custom property the CSS colours with.
  function applyStyles(root) {
    root.querySelectorAll('[data-c]').forEach(function (el) { el.style.setProperty('--c', el.dataset.c); });
    root.querySelectorAll('[data-aspect]').forEach(function (el) { el.style.aspectRatio = el.dataset.aspect; });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', function () { applyStyles(document); });
  else applyStyles(document);
})();
