"""zpm's commands against the real cluster, as a developer runs them.

Each test runs the installed ``zpm`` script (with the swift CLI's
environment, ``cluster.env_for``) and looks at what it printed and at
what Swift then holds.
"""

import json
import os
import subprocess
import tarfile

import pytest

from test.wheels import offline_pip_env, pure_wheel
from .helpers import Account, unique
from .zpm_helpers import (
    FakeKeystone, bundle, new_project, run_zpm, run_zpm_on_tty)

ARGV_PY = 'import sys\nprint(sys.argv[1:])\n'
FAILING_PY = ('import sys\nprint("half done")\n'
              'sys.stderr.write("boom: the disk is lava\\n")\nsys.exit(3)\n')


def cells(line):
    """The cells of one line of a summary table."""
    return [cell.strip() for cell in line.strip('|').split('|')]


def no_credentials(cluster):
    return {k: v for k, v in cluster.env_for('tester').items()
            if not k.startswith(('ST_', 'OS_'))}

# -------------------------------------------------------------------- auth


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
    user, _ = cluster.users['tester2']
    wrong_key = unique('wrong-key')
    out = run_zpm(no_credentials(cluster), 'auth', '-A', cluster.auth_url,
                  '-U', user, '-K', wrong_key)
    assert out.returncode == 1
    assert out.stderr.startswith('zpm: authentication failed')
    assert 'Traceback' not in out.stderr
    assert wrong_key not in out.stderr + out.stdout


def test_zpm_auth_without_credentials(cluster):
    out = run_zpm(no_credentials(cluster), 'auth')
    assert out.returncode == 1
    assert 'No credentials' in out.stderr


def test_token_and_storage_url_alone_run_a_job(cluster, tmp_path):
    env = dict(no_credentials(cluster),
               OS_AUTH_TOKEN=cluster.token('tester'),
               OS_STORAGE_URL=cluster.storage_url('tester'))
    root = new_project(env, str(tmp_path / 'tok'), ARGV_PY,
                       group={'args': 'main.py token'})
    out = run_zpm(env, 'execute', bundle(env, root))
    assert (out.returncode, out.stdout) == (0, "['token']\n"), out.stderr
    out = run_zpm(env, 'auth')
    assert out.stdout.splitlines() == [
        'Auth token: %s' % cluster.token('tester'),
        'Storage URL: %s' % cluster.storage_url('tester')]


def test_keystone_v3_names_project_and_domains(cluster, tmp_path):
    """OS_* variables as a Keystone v3 cloud sets them: zpm asks Keystone
    for a project-scoped token and uses the catalog's object-store."""
    with FakeKeystone(cluster.token('tester'),
                      cluster.storage_url('tester')) as keystone:
        env = dict(no_credentials(cluster), OS_AUTH_URL=keystone.url + '/v3',
                   OS_USERNAME='demo', OS_PASSWORD='secret',
                   OS_PROJECT_NAME='demo-project',
                   OS_USER_DOMAIN_NAME='Default',
                   OS_PROJECT_DOMAIN_NAME='Default')
        out = run_zpm(env, 'auth')
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [
            'Auth token: %s' % cluster.token('tester'),
            'Storage URL: %s' % cluster.storage_url('tester')]
        root = new_project(env, str(tmp_path / 'v3'), ARGV_PY,
                           group={'args': 'main.py v3'})
        out = run_zpm(env, 'execute', bundle(env, root))
        assert (out.returncode, out.stdout) == (0, "['v3']\n"), out.stderr
    path, body = keystone.requests[0]
    assert path == '/v3/auth/tokens'
    identity = body['auth']['identity']
    assert identity['methods'] == ['password']
    assert identity['password']['user'] == {
        'name': 'demo', 'password': 'secret', 'domain': {'name': 'Default'}}
    assert body['auth']['scope'] == {'project': {
        'name': 'demo-project', 'domain': {'name': 'Default'}}}


def test_keystone_v2_with_a_tenant(cluster):
    with FakeKeystone(cluster.token('tester'),
                      cluster.storage_url('tester')) as keystone:
        env = dict(no_credentials(cluster),
                   OS_AUTH_URL=keystone.url + '/v2.0', OS_USERNAME='demo',
                   OS_PASSWORD='secret', OS_TENANT_NAME='demo-tenant')
        out = run_zpm(env, 'auth')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == 'Storage URL: %s' % \
        cluster.storage_url('tester')
    path, body = keystone.requests[0]
    assert path == '/v2.0/tokens'
    assert body['auth'] == {'tenantName': 'demo-tenant',
                            'passwordCredentials': {'username': 'demo',
                                                    'password': 'secret'}}

# ---------------------------------------------------- new, bundle, execute


def test_new_bundle_execute_passes_arguments_whole(cluster, tmp_path):
    """zpm 0.3's escaping meets the object server's decoding: a comma and a
    quoted space stay inside their argument."""
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'argv'), ARGV_PY,
                       group={'args': 'main.py a,b "c d" \'e"f\''})
    zapp = bundle(env, root)
    assert zapp == os.path.join(root, 'argv.zapp')
    out = run_zpm(env, 'execute', zapp)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['a,b', 'c d', 'e\"f']\n"
    assert out.stderr == ''


def test_the_new_project_runs_as_created(cluster, tmp_path):
    env = cluster.env_for('tester')
    root = str(tmp_path / 'fresh')
    done = run_zpm(env, 'new', root)
    assert done.stdout.splitlines() == [
        "Created '%s/zapp.yaml'" % root, "Created '%s/main.py'" % root]
    out = run_zpm(env, 'execute', bundle(env, root))
    assert (out.returncode, out.stdout) == (0, 'Hello, world!\n')


def test_execute_summary_table(cluster, tmp_path):
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'sum'), ARGV_PY)
    out = run_zpm(env, 'execute', '--summary', bundle(env, root))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == '[]'
    assert lines[1] == 'Execution summary:'
    assert cells(lines[3])[:4] == ['Node', 'Status', 'Retcode', 'NodeT']
    row = cells(lines[5])
    assert row[:3] == ['main', 'ok', '0']
    assert float(row[3]) > 0
    assert len(row) == 14
    assert lines[-1].startswith('Total time: ')


def test_failed_node_exits_1_and_shows_its_error(cluster, tmp_path):
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'fail'), FAILING_PY)
    out = run_zpm(env, 'execute', bundle(env, root))
    assert out.returncode == 1
    assert out.stdout == 'half done\n'
    assert 'zpm: node main failed: status ok, retcode 3' in out.stderr
    assert 'X-Nexe-Error: ' in out.stderr
    assert 'boom: the disk is lava' in out.stderr


#: Prints 2 MiB (a streamed answer, more than 1 MiB), then exits with
#: argv[1].
LOUD_PY = ('import sys\nsys.stdout.write("x" * (2 << 20))\n'
           'sys.stdout.flush()\nsys.exit(int(sys.argv[1]))\n')


@pytest.mark.parametrize('code', [0, 4])
def test_a_streamed_answer_ends_as_its_node_did(cluster, tmp_path, code):
    """A large answer streams (``X-Nexe-Status: streaming``): zpm prints it
    all, and tells success from a body cut short by a failed node."""
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'loud'), LOUD_PY,
                       group={'args': 'main.py %d' % code})
    out = run_zpm(env, 'execute', '--summary', bundle(env, root))
    assert out.stdout.startswith('x' * (2 << 20))
    assert 'Traceback' not in out.stderr
    row = cells(out.stdout[2 << 20:].splitlines()[4])
    if code == 0:
        assert out.returncode == 0, out.stderr
        assert row[1:3] == ['ok', '0']
    else:
        assert out.returncode == 1
        assert 'zpm: the answer was cut short: its node failed after the ' \
            'answer started' in out.stderr
        assert row[1:3] == ['failed', '-']


def test_refused_job_exits_1_with_the_reason(cluster, tmp_path):
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'bad'), ARGV_PY,
                       group={'path': 'swift://~/nowhere/prog.wasm'})
    out = run_zpm(env, 'execute', bundle(env, root))
    assert out.returncode == 1
    assert out.stderr.startswith('zpm: the job failed: 404 Not Found\n')
    assert 'X-Nexe-Error: Error 404 Not Found while fetching /%s/nowhere/' \
        'prog.wasm\n' % Account(cluster, 'tester').name in out.stderr
    assert 'Traceback' not in out.stderr


def test_bundled_dependency_is_importable_in_the_sandbox(cluster, tmp_path):
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    pure_wheel(str(wheels), 'greeting', '2.0',
               {'greeting/__init__.py': 'WORD = "bonjour"\n'})
    env = dict(cluster.env_for('tester'), **offline_pip_env(str(wheels)))
    root = new_project(env, str(tmp_path / 'deps'),
                       'import greeting\nprint(greeting.WORD)\n',
                       dependencies=[['greeting', 'greeting']])
    out = run_zpm(env, 'execute', bundle(env, root))
    assert (out.returncode, out.stdout) == (0, 'bonjour\n'), out.stderr


def test_progress_bar_only_for_big_transfers_on_a_terminal(cluster,
                                                           tmp_path):
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'big'), ARGV_PY,
                       bundling=['main.py', 'blob.bin'])
    with open(os.path.join(root, 'blob.bin'), 'wb') as blob:
        blob.write(os.urandom(6 << 20))   # incompressible: a 6 MB zapp
    zapp = bundle(env, root)
    out = run_zpm_on_tty(env, 'execute', zapp, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout == '[]\n'
    assert 'upload:   0%' in out.stderr
    assert '/6.00M [' in out.stderr
    quiet = run_zpm(env, 'execute', zapp)   # stderr is a pipe here
    assert (quiet.returncode, quiet.stderr) == (0, '')
    small = run_zpm_on_tty(env, 'execute', bundle(env, new_project(
        env, str(tmp_path / 'small'), ARGV_PY)), cwd=root)
    assert (small.returncode, small.stderr) == (0, '')

# ------------------------------------------------------------------ deploy


def test_deploy_stores_zapp_job_and_page(cluster, tmp_path):
    env = cluster.env_for('tester')
    account = Account(cluster, 'tester')
    root = new_project(env, str(tmp_path / 'site'), ARGV_PY, with_ui=True)
    zapp = bundle(env, root)
    container = unique('zpm-deploy')
    out = run_zpm(env, 'deploy', container, zapp)
    assert out.returncode == 0, out.stderr
    # On the account's own host, where the page signs in.
    page_url = 'http://auth-test.localhost:%d/v1/%s/%s/index.html' % (
        cluster.proxy_port, account.name, container)
    assert out.stdout == 'app deployed to\n  %s\n' % page_url
    assert 'own host' not in out.stderr
    assert "swift post -r '.r:*' %s" % container in out.stderr
    assert account.listing(container) == [
        'boot/system.map', 'index.html', 'site.zapp', 'style.css',
        'zerocloud.js']
    stored = account.get('%s/site.zapp' % container)
    assert stored.headers['Content-Type'] == 'application/x-tar'
    assert not stored.content.startswith(b'\x1f\x8b')
    job = account.get('%s/boot/system.map' % container).json()
    assert job[0]['devices'][-1] == {
        'name': 'image',
        'path': 'swift://%s/%s/site.zapp' % (account.name, container)}
    page = account.get('%s/index.html' % container)
    assert page.headers['Content-Type'].startswith('text/html')
    assert '<h1 id="app-name">site</h1>' in page.text
    for secret in (cluster.users['tester'][1], account.token):
        assert secret not in page.text
    # The deployed job runs; --container names it.
    out = run_zpm(env, 'execute', '--container', container)
    assert (out.returncode, out.stdout) == (0, '[]\n'), out.stderr


def test_execute_container_ignores_a_zapp_named_too(cluster, tmp_path):
    """zpm 0.3 required the positional with ``--container`` and ignored
    it: its scripts still run the deployed job."""
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'old'), ARGV_PY)
    container = unique('zpm-old')
    assert run_zpm(env, 'deploy', container, bundle(env, root)).returncode \
        == 0
    out = run_zpm(env, 'execute', '--container', container,
                  str(tmp_path / 'not-there.zapp'))
    assert (out.returncode, out.stdout) == (0, '[]\n'), out.stderr


def test_deploy_refuses_a_non_empty_target_without_force(cluster,
                                                         tmp_path):
    env = cluster.env_for('tester')
    account = Account(cluster, 'tester')
    container = unique('zpm-full')
    account.put_container(container)
    account.put_object(container, 'precious.txt', b'keep me')
    root = new_project(env, str(tmp_path / 'app'), ARGV_PY)
    zapp = bundle(env, root)
    out = run_zpm(env, 'deploy', container, zapp)
    assert out.returncode == 1
    assert "Target container ('%s') is not empty" % container in out.stderr
    assert '--force' in out.stderr
    assert account.listing(container) == ['precious.txt']
    # A folder of its own is free, and --force deploys anyway.
    out = run_zpm(env, 'deploy', container + '/v2', zapp)
    assert out.returncode == 0, out.stderr
    assert out.stdout == 'app deployed to\n  %s/%s/v2/\n' % (account.url,
                                                             container)
    out = run_zpm(env, 'deploy', '--force', container, zapp)
    assert out.returncode == 0, out.stderr
    assert account.listing(container) == [
        'app.zapp', 'boot/system.map', 'precious.txt', 'v2/app.zapp',
        'v2/boot/system.map']
    out = run_zpm(env, 'execute', '--container', container + '/v2')
    assert (out.returncode, out.stdout) == (0, '[]\n'), out.stderr


def test_deploy_execute_summary(cluster, tmp_path):
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'now'), ARGV_PY,
                       group={'args': 'main.py "x y"'})
    container = unique('zpm-now')
    out = run_zpm(env, 'deploy', '--execute', '--summary', container,
                  bundle(env, root))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:3] == ['app deployed to', '  %s/%s/' % (
        cluster.storage_url('tester'), container), "['x y']"]
    assert lines[3] == 'Execution summary:'
    assert cells(lines[7])[:3] == ['main', 'ok', '0']


def test_execute_a_container_without_a_job(cluster):
    env = cluster.env_for('tester')
    container = unique('zpm-empty')
    Account(cluster, 'tester').put_container(container)
    out = run_zpm(env, 'execute', '--container', container)
    assert out.returncode == 1
    assert out.stderr.startswith('zpm: the job failed: 404')


def test_deploy_needs_a_zapp(cluster, tmp_path):
    not_a_zapp = tmp_path / 'x.zapp'
    not_a_zapp.write_bytes(b'plain text')
    out = run_zpm(cluster.env_for('tester'), 'deploy', unique('zpm-x'),
                  str(not_a_zapp))
    assert out.returncode == 1
    assert out.stderr.startswith('zpm: cannot read %s' % not_a_zapp)
    assert 'Traceback' not in out.stderr


def test_stored_zapp_is_a_tar_of_the_bundle(cluster, tmp_path):
    env = cluster.env_for('tester')
    root = new_project(env, str(tmp_path / 'tarred'), ARGV_PY)
    zapp = bundle(env, root)
    container = unique('zpm-tar')
    assert run_zpm(env, 'deploy', container, zapp).returncode == 0
    stored = tmp_path / 'stored.tar'
    stored.write_bytes(Account(cluster, 'tester').get(
        '%s/tarred.zapp' % container).content)
    with tarfile.open(zapp) as packed, tarfile.open(stored, 'r:') as plain:
        assert plain.getnames() == packed.getnames()
        assert json.load(plain.extractfile('boot/system.map')) == \
            json.load(packed.extractfile('boot/system.map'))
