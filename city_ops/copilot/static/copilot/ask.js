// The Ask box (copilot/_ask.html): sends the request to POST /api/copilot/ and shows the reply in place -
// the answer, each call with its status, the proposal card with Confirm / Cancel, and the links. Everything
// from the server is set as text (textContent), never as markup: an answer may quote a crew's note.
(function () {
  'use strict';
  const form = document.getElementById('ask-box');
  if (!form) return;
  const out = document.getElementById('ask-reply');
  const t = form.dataset;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function post(body) {
    const token = form.querySelector('input[name=csrfmiddlewaretoken]').value;
    return fetch(t.api, {
      method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
      headers: {'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRFToken': token},
    }).then(function (resp) {
      return resp.json().catch(function () { return {detail: resp.statusText}; })
        .then(function (data) { return {ok: resp.ok, data: data}; });
    });
  }

  function callItem(call) {
    const li = el('li', 'call status-' + call.status);
    li.appendChild(el('span', 'pill', call.status));
    li.appendChild(document.createTextNode(' '));
    li.appendChild(el('code', null, call.tool));
    const said = call.status === 'proposed' ? call.result && call.result.proposal : call.reason;
    if (said) li.appendChild(el('div', call.status === 'proposed' ? 'proposal-card' : null, said));
    return li;
  }

  function proposalActions() {
    const box = el('div', 'proposal-actions');
    box.appendChild(el('p', 'muted', t.tProposed));
    const confirm = el('button', null, t.tConfirm);
    confirm.type = 'button';
    confirm.dataset.decision = 'confirm';
    const cancel = el('button', 'btn-ghost-dark', t.tCancel);
    cancel.type = 'button';
    cancel.dataset.decision = 'cancel';
    box.append(confirm, ' ', cancel);
    return box;
  }

  function render(res) {
    out.hidden = false;
    out.textContent = '';
    const d = res.data;
    if (!res.ok) {
      out.appendChild(el('p', 'ask-error', d.detail || Object.values(d).join(' ')));
      return;
    }
    form.elements.conversation.value = d.conversation;
    out.appendChild(el('p', 'ask-answer', d.answer));
    out.appendChild(el('small', 'muted', t.tEngine + ': ' + d.engine +
      (d.fallback_reason ? ' · ' + t.tFallback + ': ' + d.fallback_reason : '')));
    const list = el('ul', 'calls');
    d.calls.forEach(function (call) { list.appendChild(callItem(call)); });
    out.appendChild(list);
    if (d.calls.some(function (c) { return c.status === 'proposed'; })) out.appendChild(proposalActions());
    const links = el('p', 'ask-links');
    d.links.filter(function (l) { return l.url.charAt(0) === '/'; }).forEach(function (link) {
      const a = el('a', null, link.label);
      a.href = link.url;
      links.append(a, ' ');
    });
    const open = el('a', null, t.tOpen);
    open.href = t.conversationUrl.replace('/0/', '/' + d.conversation + '/');
    links.appendChild(open);
    out.appendChild(links);
  }

  function busy() {
    out.hidden = false;
    out.textContent = t.tBusy;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) return;
    const conversation = Number(form.elements.conversation.value) || undefined;
    busy();
    post({text: text, conversation: conversation}).then(render);
  });

  out.addEventListener('click', function (ev) {
    const button = ev.target.closest('[data-decision]');
    if (!button) return;
    const body = {conversation: Number(form.elements.conversation.value)};
    body[button.dataset.decision] = true;
    busy();
    post(body).then(render);
  });
})();
