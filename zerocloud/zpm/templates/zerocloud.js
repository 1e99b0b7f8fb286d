// The zapp page: sign in, run the zapp's job with the arguments and paths
// typed in, show its output and per-node summary.
//
// Credentials live in the `session` object of this closure and nowhere
// else: never in sessionStorage, localStorage or cookies, which every page
// served by this Swift (any account's) could read.
'use strict';

(function () {
  const session = { token: null, storageUrl: null };

  const $ = (id) => document.getElementById(id);

  // One argument as a space-free word of exec.args: ZeroCloud splits on
  // spaces and decodes \xNN (zpm's escaping).
  function escapeArg(word) {
    return Array.from(word).map((ch) => {
      const code = ch.codePointAt(0);
      if ('\\", '.includes(ch) || code < 0x20 || code === 0x7f) {
        return '\\x' + code.toString(16).padStart(2, '0');
      }
      return ch;
    }).join('');
  }

  // X-Nexe-* items are percent-encoded UTF-8.
  function decodeItem(text) {
    try {
      return decodeURIComponent(text);
    } catch (err) {
      return text;
    }
  }

  function nexeList(headers, name) {
    const value = headers.get(name);
    return value === null ? [] : value.split(',').map(decodeItem);
  }

  // X-Nexe-Cdr-Line: total time, then per node its time and ten counters
  // (a node that never ran has the counters only).
  function parseCdr(line, count) {
    const items = line.split(',').map((item) => item.trim());
    const total = items.shift();
    const nodes = [];
    for (let i = 0; i < count; i++) {
      let time = '-';
      let item = items.shift() || '';
      if (item && !item.includes(' ')) {
        time = item;
        item = items.shift() || '';
      }
      nodes.push([time].concat(item.split(/\s+/).filter(Boolean)));
    }
    return { total, nodes };
  }

  function showSummary(headers) {
    const body = $('summary').querySelector('tbody');
    body.replaceChildren();
    const names = nexeList(headers, 'X-Nexe-System');
    const statuses = nexeList(headers, 'X-Nexe-Status');
    const retcodes = nexeList(headers, 'X-Nexe-Retcode');
    const cdr = parseCdr(headers.get('X-Nexe-Cdr-Line') || '', names.length);
    names.forEach((name, i) => {
      const row = body.insertRow();
      // Disk columns only: nodes here have no network channels.
      const cells = [name, statuses[i], retcodes[i]]
        .concat(cdr.nodes[i].slice(0, 7));
      cells.forEach((text) => { row.insertCell().textContent = text || ''; });
    });
    $('total-time').textContent = cdr.total ? 'Total time: ' + cdr.total + ' s' : '';
  }

  async function signIn(event) {
    event.preventDefault();
    const status = $('login-status');
    status.textContent = 'Signing in…';
    session.token = null;
    $('run').disabled = true;
    try {
      const token = $('auth-token').value.trim();
      if (token) {
        session.token = token;
        session.storageUrl = $('storage-url').value.trim();
      } else {
        const resp = await fetch($('auth-url').value.trim(), {
          headers: { 'X-Auth-User': $('auth-user').value.trim(),
                     'X-Auth-Key': $('auth-key').value },
          cache: 'no-store', credentials: 'omit' });
        if (!resp.ok) {
          throw new Error('authentication failed: ' + resp.status + ' ' +
                          resp.statusText);
        }
        session.token = resp.headers.get('X-Auth-Token');
        session.storageUrl = resp.headers.get('X-Storage-Url');
      }
      $('auth-key').value = '';
      $('auth-token').value = '';
      status.textContent = 'Signed in to ' + session.storageUrl;
      $('run').disabled = false;
    } catch (err) {
      status.textContent = String(err.message || err);
    }
  }

  function accountOf(storageUrl) {
    return new URL(storageUrl).pathname.replace(/\/+$/, '').split('/').pop();
  }

  async function run(event) {
    event.preventDefault();
    const status = $('run-status');
    $('output').textContent = '';
    $('error').textContent = '';
    status.textContent = 'Running…';
    const auth = { 'X-Auth-Token': session.token };
    try {
      const mapResp = await fetch('boot/system.map', {
        headers: auth, cache: 'no-store', credentials: 'omit' });
      if (!mapResp.ok) {
        throw new Error('cannot load boot/system.map: ' + mapResp.status);
      }
      const job = await mapResp.json();
      const extra = Array.from(document.querySelectorAll('.zapp-arg'))
        .map((field) => escapeArg(field.value)).filter(Boolean);
      if (extra.length) {
        const stanza = job[0].exec;
        stanza.args = [stanza.args || ''].concat(extra).join(' ').trim();
      }
      const account = accountOf(session.storageUrl);
      document.querySelectorAll('.zapp-path').forEach((field) => {
        const group = job[Number(field.dataset.group)];
        (group.devices || []).forEach((device) => {
          if (device.name === field.dataset.device) {
            device.path = 'swift://' + account + '/' +
              field.value.trim().replace(/^\/+/, '');
          }
        });
      });
      const resp = await fetch(session.storageUrl, {
        method: 'POST', body: JSON.stringify(job), credentials: 'omit',
        headers: Object.assign({ 'X-Zerovm-Execute': '1.0',
                                 'Content-Type': 'application/json' }, auth) });
      const text = await resp.text();
      showSummary(resp.headers);
      const error = resp.headers.get('X-Nexe-Error');
      if (resp.ok) {
        $('output').textContent = text;
      } else {
        $('error').textContent = resp.status + ' ' + resp.statusText + '\n' + text;
      }
      if (error) {
        $('error').textContent += decodeItem(error);
      }
      status.textContent = resp.ok ? 'Done' : 'Failed';
    } catch (err) {
      status.textContent = 'Failed';
      $('error').textContent = String(err.message || err);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    const page = new URL(window.location.href);
    const parts = page.pathname.split('/');
    $('auth-url').value = page.origin + '/auth/v1.0';
    $('storage-url').value = page.origin + parts.slice(0, 3).join('/');
    $('login').addEventListener('submit', signIn);
    $('run-form').addEventListener('submit', run);
  });
}());
