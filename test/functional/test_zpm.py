"""``zpm auth`` against the real cluster, as the seed document shows it."""

import subprocess


def run_zpm(env, *args):
    return subprocess.run(['zpm'] + list(args), env=env, capture_output=True,
                          text=True)


def test_zpm_auth_prints_token_and_storage_url(cluster):
    out = run_zpm(cluster.env_for('tester'), 'auth')
    assert out.returncode == 0, out.stderr
    token_line, url_line = out.stdout.splitlines()
    assert token_line.startswith('Auth token: AUTH_tk')
    assert url_line == 'Storage URL: %s' % cluster.storage_url('tester')
    # The printed token really works.
    token = token_line.split(': ', 1)[1]
    head = subprocess.run(['curl', '-s', '-o', '/dev/null',
                           '-w', '%{http_code}',
                           '-I', '-H', 'X-Auth-Token: ' + token,
                           cluster.storage_url('tester')],
                          capture_output=True, text=True)
    assert head.stdout in ('200', '204')


def test_zpm_auth_with_flags_and_bad_key(cluster):
    env = {k: v for k, v in cluster.env_for('tester').items()
           if not k.startswith(('ST_', 'OS_'))}
    user, _ = cluster.users['tester2']
    out = run_zpm(env, 'auth', '-A', cluster.auth_url, '-U', user,
                  '-K', 'wrong')
    assert out.returncode == 1
    assert out.stderr.startswith('zpm: authentication failed')
    assert 'Traceback' not in out.stderr


def test_zpm_auth_without_credentials(cluster):
    env = {k: v for k, v in cluster.env_for('tester').items()
           if not k.startswith(('ST_', 'OS_'))}
    out = run_zpm(env, 'auth')
    assert out.returncode == 1
    assert 'No credentials' in out.stderr
