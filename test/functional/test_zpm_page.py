"""The zapp web page in a real browser (Debian's Chromium, headless,
driven by Playwright).

``zpm new --with-ui`` → ``zpm bundle`` → ``zpm deploy`` → ``swift post -r
'.r:*'`` (the ACL the README documents), then a person's visit: open the
page, sign in with user and key, type an argument with a comma and a space
and the input/output paths, Run, and read the output and the per-node
summary.  The page must keep the key and token out of the DOM and out of
every storage the Swift origin shares (cookies, localStorage,
sessionStorage).  A screenshot is saved under ``test/artifacts/``.
"""

import os
import re
import subprocess

import pytest

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


def test_sign_in_fill_run_and_read(cluster, deployed_page):
    page_url, data = deployed_page
    account = Account(cluster, 'tester')
    login, key = cluster.users['tester']
    sync_playwright, expect = browser_driver()
    os.makedirs(ARTIFACTS, exist_ok=True)
    screenshot = os.path.join(ARTIFACTS, 'zpm-page.png')
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         headless=True)
        try:
            page = browser.new_page(viewport={'width': 1100, 'height': 1000})
            page.set_default_timeout(PAGE_TIMEOUT)
            page.goto(page_url)
            assert page.inner_text('#app-name') == 'shout'
            assert page.inner_text('#app-description') == \
                'Shouts your input back.'
            assert page.input_value('#auth-url') == \
                cluster.auth_url.rstrip('/')
            page.fill('#auth-user', login)
            page.fill('#auth-key', key)
            page.click('#sign-in')
            page.wait_for_selector('#run:enabled')
            assert page.inner_text('#login-status') == \
                'Signed in to %s' % account.url
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
        finally:
            browser.close()
    assert account.get('%s/loud.txt' % data).text == 'ONE\nTWO\nTHREE\n'
