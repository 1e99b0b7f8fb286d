"""The zapp web page in a real browser (Debian's Chromium, headless,
driven by Playwright).

``zpm new --with-ui`` → ``zpm bundle`` → ``zpm deploy`` → ``swift post -r
'.r:*'`` (the ACL the README documents), then a person's visit: open the
page at the URL ``zpm deploy`` printed (on the account's own host,
``auth-test.localhost``), sign in with user and key, type an argument with
a comma and a space and the input/output paths, Run, and read the output
and the per-node summary.  The page must keep the key and token out of the
DOM and out of every storage an origin shares (cookies, localStorage,
sessionStorage).  A screenshot is saved under ``test/artifacts/``.

Another tenant's public page (``AUTH_test2``, on the shared host) opens the
user's page in a window and in a frame and tries to read its inputs and
wrap its ``fetch`` while the user signs in there: it must end with neither
key nor token.  Opened on the shared host, the page does not sign in.
"""

import contextlib
import json
import os
import re
import subprocess

import pytest
import requests

from .helpers import Account, unique
from .zpm_helpers import bundle, new_project, run_zpm

CHROMIUM = '/usr/bin/chromium'
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'artifacts')
#: Milliseconds the page may take to sign in or to run the job.
PAGE_TIMEOUT = 60000
SHOUT_PY = '''import sys
text = open('/dev/input').read()
open('/dev/output', 'w').write(text.upper())
print('Hello, %s! Your input has %d lines.' % (
    ' and '.join(sys.argv[1:]), len(text.splitlines())))
'''


def browser_driver():
    """Playwright's driver and ``expect``, or a failure saying what to
    install."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail('the browser test needs Playwright: pip install '
                    'playwright (make bootstrap installs it)', pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail('the browser test needs Debian\'s Chromium at %s: '
                    'apt-get install chromium (make bootstrap installs it)'
                    % CHROMIUM, pytrace=False)
    return sync_playwright, expect


@pytest.fixture
def deployed_page(cluster, tmp_path):
    """(page URL, data container) of a deployed zapp with a web page."""
    env = cluster.env_for('tester')
    account = Account(cluster, 'tester')
    data = unique('page-data')
    account.put_container(data)
    account.put_object(data, 'words.txt', b'one\ntwo\nthree\n')
    root = new_project(
        env, str(tmp_path / 'shout'), SHOUT_PY, with_ui=True,
        group={'devices': [
            {'name': 'python'},
            {'name': 'input', 'path': 'swift://~/%s/words.txt' % data},
            {'name': 'output', 'path': 'swift://~/%s/shout.txt' % data},
            {'name': 'stdout', 'content_type': 'text/plain'}]},
        help={'description': 'Shouts your input back.',
              'args': [['who', 'Who to greet']]})
    container = unique('page')
    out = run_zpm(env, 'deploy', container, bundle(env, root))
    assert out.returncode == 0, out.stderr
    public = subprocess.run(['swift', 'post', '-r', '.r:*', container],
                            env=env, capture_output=True, text=True)
    assert public.returncode == 0, public.stderr
    return out.stdout.split()[-1], data


def own_host(cluster, account: str = 'auth-test') -> str:
    """The origin of an account's own host on the test cluster."""
    return 'http://%s.localhost:%d' % (account, cluster.proxy_port)


def sign_in(page, login: str, key: str) -> None:
    """Sign in with user and key on a page (or a frame's locator), once it
    offers signing in."""
    page.locator('#sign-in:enabled').wait_for()
    page.locator('#auth-user').fill(login)
    page.locator('#auth-key').fill(key)
    page.locator('#sign-in').click()
    page.locator('#run:enabled').wait_for()


@contextlib.contextmanager
def browser_page(**options):
    """A page of a fresh headless Chromium, closed afterwards."""
    sync_playwright, _ = browser_driver()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         headless=True)
        try:
            page = browser.new_page(**options)
            page.set_default_timeout(PAGE_TIMEOUT)
            yield page
        finally:
            browser.close()


def test_sign_in_fill_run_and_read(cluster, deployed_page):
    page_url, data = deployed_page
    account = Account(cluster, 'tester')
    login, key = cluster.users['tester']
    _, expect = browser_driver()
    os.makedirs(ARTIFACTS, exist_ok=True)
    screenshot = os.path.join(ARTIFACTS, 'zpm-page.png')
    assert page_url.startswith(own_host(cluster) + '/v1/AUTH_test/')
    with browser_page(viewport={'width': 1100, 'height': 1000}) as page:
        page.goto(page_url)
        assert page.inner_text('#app-name') == 'shout'
        assert page.inner_text('#app-description') == \
            'Shouts your input back.'
        assert page.input_value('#auth-url') == \
            '%s/auth/v1.0' % own_host(cluster)
        sign_in(page, login, key)
        assert page.inner_text('#login-status') == \
            'Signed in to %s/v1/%s' % (own_host(cluster), account.name)
        assert page.input_value('#auth-key') == ''
        page.fill('input[data-arg="who"]', 'Ada, Grace')
        assert page.input_value('input[data-device="input"]') == \
            '%s/words.txt' % data
        page.fill('input[data-device="output"]', '%s/loud.txt' % data)
        page.click('#run')
        expect(page.locator('#run-status')).to_have_text(
            re.compile('^(Done|Failed)$'), timeout=PAGE_TIMEOUT)
        page.screenshot(path=screenshot, full_page=True)
        print('\nscreenshot of the zapp page: %s' % screenshot)
        assert page.inner_text('#run-status') == 'Done', \
            page.inner_text('#error')
        assert page.inner_text('#output') == \
            'Hello, Ada, Grace! Your input has 3 lines.\n'
        row = page.locator('#summary tbody tr')
        assert row.count() == 1
        cells = row.locator('td').all_inner_texts()
        assert cells[:3] == ['main', 'ok', '0']
        assert float(cells[3]) > 0
        assert page.inner_text('#total-time').startswith('Total time: ')
        # Credentials: in the page's memory only.
        stored = page.evaluate(
            '[localStorage.length, sessionStorage.length, '
            'document.cookie]')
        assert stored == [0, 0, '']
        assert page.context.cookies() == []
        html = page.content()
        assert key not in html
        assert account.token not in html
    assert account.get('%s/loud.txt' % data).text == 'ONE\nTWO\nTHREE\n'


#: The other tenant's page: opens the zapp page in a window and a frame,
#: and keeps trying to read its inputs and wrap its fetch.  What it got,
#: and how every attempt ended, is in ``window.loot``.
EVIL_HTML = '''<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cute cats</title></head>
<body><script>
window.loot = {values: [], reads: {}, attempts: {}, errors: {}};
const target = %s;
function grab(win, where) {
  loot.attempts[where] = (loot.attempts[where] || 0) + 1;
  try {
    const doc = win.document;
    loot.reads[doc.URL] = (loot.reads[doc.URL] || 0) + 1;
    if (!win.__wrapped) {
      const real = win.fetch;
      win.fetch = function (url, options) {
        loot.values.push(JSON.stringify([String(url), options]));
        return real.apply(this, arguments);
      };
      win.__wrapped = true;
    }
    doc.querySelectorAll('input').forEach(
      (input) => loot.values.push(input.value));
  } catch (err) {
    loot.errors[where] = err.name;
  }
  try {
    loot.values.push(String(win.name), String(win.location.href));
  } catch (err) {
    loot.errors[where + ' location'] = err.name;
  }
}
window.popup = window.open(target, 'zapp');
const frame = document.createElement('iframe');
frame.src = target;
frame.width = 900;
frame.height = 700;
document.body.appendChild(frame);
setInterval(() => {
  grab(window.popup, 'popup');
  grab(frame.contentWindow, 'frame');
}, 20);
</script></body></html>
'''


@pytest.fixture
def evil_page(cluster, deployed_page):
    """URL of AUTH_test2's public page that goes after the zapp page."""
    page_url, _ = deployed_page
    other = Account(cluster, 'tester2')
    container = unique('pub')
    other.put_container(container, **{'X-Container-Read': '.r:*'})
    other.put_object(container, 'evil.html',
                     (EVIL_HTML % json.dumps(page_url)).encode(),
                     content_type='text/html')
    return '%s/%s/evil.html' % (other.url, container)


def test_another_tenants_page_gets_no_credentials(cluster, deployed_page,
                                                  evil_page):
    page_url, _ = deployed_page
    account = Account(cluster, 'tester')
    login, key = cluster.users['tester']
    with browser_page() as evil:
        with evil.expect_popup() as opened:
            evil.goto(evil_page)
        popup = opened.value
        popup.set_default_timeout(PAGE_TIMEOUT)
        frame = evil.frame_locator('iframe')
        # The user signs in in both, with the other page watching.
        for page in (popup, frame):
            sign_in(page, login, key)
            assert page.locator('#login-status').inner_text() == \
                'Signed in to %s/v1/AUTH_test' % own_host(cluster)
            assert page.locator('#auth-key').input_value() == ''
        evil.wait_for_function(
            'loot.attempts.popup > 50 && loot.attempts.frame > 50')
        loot = evil.evaluate('loot')
        os.makedirs(ARTIFACTS, exist_ok=True)
        evil.bring_to_front()   # a background tab's frames are not redrawn
        evil.screenshot(path=os.path.join(ARTIFACTS,
                                          'zpm-page-framed-by-another.png'))
    # Only the blank document a new window or frame starts with, before
    # the zapp page replaces it, was readable.
    assert set(loot['reads']) <= {'about:blank'}
    assert set(loot['values']) <= {'zapp', '', 'about:blank'}
    assert loot['errors'] == {
        'popup': 'SecurityError', 'frame': 'SecurityError',
        'popup location': 'SecurityError', 'frame location': 'SecurityError'}
    text = json.dumps(loot)
    assert key not in text
    # tempauth hands a user the same token while it lives.
    assert account.token not in text


def test_on_the_shared_host_the_page_does_not_sign_in(cluster,
                                                      deployed_page):
    page_url, _ = deployed_page
    shared = page_url.replace(own_host(cluster), cluster.proxy_url.rstrip('/'))
    assert shared != page_url
    with browser_page() as page:
        page.goto(shared)
        link = page.locator('#origin-status a')
        link.wait_for()
        assert link.get_attribute('href') == page_url
        assert page.is_disabled('#auth-user')
        assert page.is_disabled('#auth-key')
        assert page.is_disabled('#auth-token')
        assert page.is_disabled('#sign-in')


def test_an_account_host_serves_that_account_only(cluster, deployed_page,
                                                  evil_page):
    """Raw requests, as any client could send them."""
    page_url, _ = deployed_page
    port = cluster.proxy_port
    on_test_host = {'Host': 'auth-test.localhost:%d' % port}
    shared = cluster.proxy_url.rstrip('/')
    evil_path = evil_page[len(shared):]
    assert requests.get(evil_page).status_code == 200
    refused = requests.get(shared + evil_path, headers=on_test_host)
    assert refused.status_code == 403
    assert refused.text.startswith('This host serves only the account '
                                   'whose host it is (auth-test)')
    page_path = page_url[len(own_host(cluster)):]
    served = requests.get(shared + page_path, headers=on_test_host)
    assert served.status_code == 200
    assert '<form id="login"' in served.text
    for path in ('/open%s' % page_path[len('/v1'):], '/v1/AUTH_test2'):
        assert requests.get(shared + path, headers=on_test_host
                            ).status_code == 403
    info = requests.get(shared + '/info', headers=on_test_host).json()
    assert info['account_hosts'] == {'domain': 'localhost'}
    login, key = cluster.users['tester']
    signed = requests.get(shared + '/auth/v1.0', headers=dict(
        on_test_host, **{'X-Auth-User': login, 'X-Auth-Key': key}))
    assert signed.status_code == 200
