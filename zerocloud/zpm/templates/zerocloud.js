// The zapp page: sign in, run the zapp's job with the arguments and paths
// typed in, show its output and per-node summary.
//
// A page can script every page of its origin.  Swift serves every account
// under one host, so this page signs in only on its account's own host
// (the `account_hosts` proxy filter: `auth-test.<domain>` serves AUTH_test
// only), and talks to that origin only.  Credentials live in the `session`
// object of this closure and nowhere else: never in sessionStorage,
// localStorage or cookies.
'use strict';

(function () {
  const session = { token: null };
  // `/v1/AUTH_x` and `AUTH_x` of this page's own path: jobs run there.
  const page = { accountPath: null, account: null };

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

  // AUTH_test -> auth-test, as zerocloud/account_host.py names hosts.
  function hostLabel(account) {
    const hosted = /^[A-Z][A-Z0-9]*_[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
    if (account.length > 63 || !hosted.test(account)) {
      return null;
    }
    return account.toLowerCase().replace('_', '-');
  }

  // Whether this page is on its account's own host; says why not.
  async function onOwnHost() {
    const status = $('origin-status');
    let domain = null;
    try {
      const resp = await fetch('/info', { cache: 'no-store',
                                          credentials: 'omit' });
      const info = resp.ok ? await resp.json() : {};
      domain = info.account_hosts ? info.account_hosts.domain : null;
    } catch (err) {
      domain = null;
    }
    const label = hostLabel(page.account);
    if (!domain || !label) {
      status.textContent = domain
        ? 'Account ' + page.account + ' has no host of its own (its name ' +
          'is not a host name), so this page does not sign in.'
        : 'This Swift serves every account\'s pages on one origin (its ' +
          'operator has not set up account hosts), so any of them could ' +
          'read what you type here: this page does not sign in.';
      return false;
    }
    const home = label + '.' + domain;
    if (window.location.hostname === home) {
      status.textContent = 'Signing in on ' + window.location.origin +
        ', which serves account ' + page.account + ' only.';
      return true;
    }
    const there = new URL(window.location.href);
    there.hostname = home;
    const link = document.createElement('a');
    link.href = there.href;
    link.textContent = there.href;
    status.replaceChildren(
      'Other accounts\' pages share this host and could read what you ' +
      'type here. Sign in on this page\'s own host: ', link);
    return false;
  }

  async function signIn(event) {
    event.preventDefault();
    const status = $('login-status');
    status.textContent = 'Signing in…';
    session.token = null;
    $('run').disabled = true;
    try {
      let token = $('auth-token').value.trim();
      if (!token) {
        const resp = await fetch($('auth-url').value.trim(), {
          headers: { 'X-Auth-User': $('auth-user').value.trim(),
                     'X-Auth-Key': $('auth-key').value },
          cache: 'no-store', credentials: 'omit' });
        if (!resp.ok) {
          throw new Error('authentication failed: ' + resp.status + ' ' +
                          resp.statusText);
        }
        token = resp.headers.get('X-Auth-Token');
      }
      $('auth-key').value = '';
      $('auth-token').value = '';
      // Jobs run in this page's account: the sign-in must act there.
      const head = await fetch(page.accountPath, {
        method: 'HEAD', headers: { 'X-Auth-Token': token },
        cache: 'no-store', credentials: 'omit' });
      if (!head.ok) {
        throw new Error('this page runs jobs in account ' + page.account +
                        ', which your sign-in cannot use: ' + head.status +
                        ' ' + head.statusText);
      }
      session.token = token;
      status.textContent = 'Signed in to ' + window.location.origin +
        page.accountPath;
      $('run').disabled = false;
    } catch (err) {
      status.textContent = String(err.message || err);
    }
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
      document.querySelectorAll('.zapp-path').forEach((field) => {
        const group = job[Number(field.dataset.group)];
        (group.devices || []).forEach((device) => {
          if (device.name === field.dataset.device) {
            device.path = 'swift://' + page.account + '/' +
              field.value.trim().replace(/^\/+/, '');
          }
        });
      });
      const resp = await fetch(page.accountPath, {
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

  document.addEventListener('DOMContentLoaded', async () => {
    const parts = window.location.pathname.split('/');
    page.accountPath = parts.slice(0, 3).join('/');
    page.account = decodeURIComponent(parts[2] || '');
    $('auth-url').value = window.location.origin + '/auth/v1.0';
    $('login').addEventListener('submit', signIn);
    $('run-form').addEventListener('submit', run);
    $('sign-in-fields').disabled = !(await onOwnHost());
  });
}());
