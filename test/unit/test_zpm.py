"""zpm's pieces without a cluster: escaping, zapp.yaml and the job,
bundling, the page, auth selection, the summary, the command line."""

import io
import json
import os
import tarfile

import pytest
from swiftclient.exceptions import ClientException

from test.wheels import offline_pip_env, pure_wheel
from zerocloud.runtime import nvram
from zerocloud.zpm import auth, bundle, cli, deploy, project, summary
from zerocloud.zpm.auth import CredentialsError
from zerocloud.zpm.project import ProjectError

# ---------------------------------------------------------------- escaping


@pytest.mark.parametrize('line,expected', [
    ('hello.py a,b "c d"', 'hello.py a\\x2cb c\\x20d'),
    ("x 'q\"uote' back\\\\slash", 'x q\\x22uote back\\x5cslash'),
    ('"new\nline" "tab\there"', 'new\\x0aline tab\\x09here'),
    ('', ''),
    ('  spaced   out  ', 'spaced out'),
])
def test_escape_args_like_zpm_0_3(line, expected):
    assert project.escape_args(line) == expected


def test_escaped_args_come_back_whole_through_the_runtime_split():
    words = ['a,b', 'c d', 'q"', 'back\\x20', 'é ☃', 'new\nline']
    line = ' '.join(project.escape_arg(word) for word in words)
    assert nvram.split_args(line) == words


def test_unbalanced_quote_is_a_clear_error():
    with pytest.raises(ProjectError, match='No closing quotation'):
        project.escape_args('main.py "open')

# ------------------------------------------------------- zapp.yaml and job


ZAPP = {
    'execution': {'groups': [
        {'name': 'map', 'path': 'file://python:python',
         'args': 'map.py "a b"', 'env': {'LANG': 'C'}, 'count': 2,
         'connect': ['reduce'], 'devices': [{'name': 'python'}]},
        {'name': 'reduce', 'path': 'file://python:python',
         'args': 'reduce.py', 'devices': [{'name': 'stdout'}]}]},
    'meta': {'name': 'wc'},
}


def test_job_moves_path_args_env_into_exec_and_passes_the_rest():
    job = project.job_description(ZAPP)
    assert job == [
        {'name': 'map', 'count': 2, 'connect': ['reduce'],
         'devices': [{'name': 'python'}],
         'exec': {'path': 'file://python:python', 'args': 'map.py a\\x20b',
                  'env': {'LANG': 'C'}}},
        {'name': 'reduce', 'devices': [{'name': 'stdout'}],
         'exec': {'path': 'file://python:python', 'args': 'reduce.py'}}]


def test_job_of_a_zapp_with_dependencies_finds_them():
    zapp = dict(ZAPP, dependencies=['six'])
    for node in project.job_description(zapp):
        assert node['exec']['env']['PYTHONPATH'] == \
            '/lib/python3.15/site-packages'


@pytest.mark.parametrize('text,message', [
    ('- a list', 'must be a mapping'),
    ('meta: {name: x}', 'execution.groups must be a non-empty list'),
    ('meta: {name: a/b}\nexecution: {groups: [{path: p}]}',
     'meta.name must be a file name'),
    ('meta: {name: x}\nexecution: {groups: [{name: g}]}',
     'group g needs a path'),
    ('meta: {name: x}\nexecution: {groups: [{path: p, args: 3}]}',
     'args must be a string'),
    ('meta: {name: x}\nexecution: {groups: [{path: p}]}\nbundling: a.py',
     'bundling must be a list of strings'),
    ('meta: {name: x}\nexecution: {groups: [{path: p}]}\n'
     'dependencies: [[]]', 'each dependency is a name or a list'),
    ('meta: {name: x}\nexecution: {groups: [{path: p}]}\n'
     'help: {args: [[a]]}', 'help.args must be a list of [name, label]'),
    ('meta: [', 'is not valid YAML'),
])
def test_bad_zapp_yaml_is_named(text, message):
    with pytest.raises(ProjectError, match=message.replace('[', r'\[')):
        project.parse_zapp(text)


def test_find_root_searches_upwards(tmp_path):
    (tmp_path / 'zapp.yaml').write_text('x')
    deep = tmp_path / 'a' / 'b'
    deep.mkdir(parents=True)
    assert project.find_root(str(deep)) == str(tmp_path)
    with pytest.raises(ProjectError, match='no zapp.yaml found'):
        project.find_root('/')

# ---------------------------------------------------------------- zpm new


def test_new_project_bundles_and_names_itself(tmp_path):
    where = tmp_path / 'greeter'
    written = project.create_project(str(where), with_ui=False)
    assert sorted(os.path.basename(p) for p in written) == [
        'main.py', 'zapp.yaml']
    zapp = project.load_zapp(str(where))
    assert zapp['meta']['name'] == 'greeter'
    assert 'ui' not in zapp
    assert project.job_description(zapp)[0]['exec'] == {
        'path': 'file://python:python', 'args': 'main.py'}


def test_new_project_with_ui(tmp_path):
    project.create_project(str(tmp_path / 'p'), with_ui=True)
    zapp = project.load_zapp(str(tmp_path / 'p'))
    assert zapp['ui'] == ['index.html.tmpl', 'style.css', 'zerocloud.js']
    assert sorted(os.listdir(tmp_path / 'p')) == [
        'index.html.tmpl', 'main.py', 'style.css', 'zapp.yaml', 'zerocloud.js']


def test_new_refuses_to_overwrite_and_creates_nothing(tmp_path):
    (tmp_path / 'main.py').write_text('mine')
    with pytest.raises(ProjectError, match="main.py' already exists"):
        project.create_project(str(tmp_path), with_ui=True)
    assert os.listdir(tmp_path) == ['main.py']
    assert (tmp_path / 'main.py').read_text() == 'mine'

# ----------------------------------------------------------------- bundle


def write_project(root, zapp_yaml, files):
    (root / 'zapp.yaml').write_text(zapp_yaml)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


YAML = '''
meta: {name: demo}
execution:
  groups: [{name: main, path: 'file://python:python', args: 'main.py x,y'}]
bundling: [main.py, 'lib', 'nothing*.txt']
ui: [index.html.tmpl]
'''


def test_bundle_order_and_content(tmp_path, caplog):
    write_project(tmp_path, YAML, {
        'main.py': 'print(1)', 'lib/util.py': 'u = 1',
        'lib/__pycache__/util.cpython-311.pyc': 'junk',
        'index.html.tmpl': '<h1>{{ zapp.meta.name }}</h1>',
        'other.py': 'not bundled'})
    path = bundle.build(str(tmp_path))
    assert path == str(tmp_path / 'demo.zapp')
    with open(path, 'rb') as handle:
        assert handle.read(2) == b'\x1f\x8b'   # gzip
    with tarfile.open(path) as tar:
        names = tar.getnames()
        system_map = tar.getmember('boot/system.map')
        job = json.load(tar.extractfile(system_map))
    assert names == ['boot/system.map', 'zapp.yaml', 'main.py', 'lib',
                     'lib/util.py', 'index.html.tmpl']
    assert (system_map.mtime, system_map.mode) == (0, 0o644)
    assert job[0]['exec']['args'] == 'main.py x\\x2cy'
    assert "'nothing*.txt' in bundling matched no file" in caplog.text


def test_bundle_rebuild_leaves_out_its_own_output(tmp_path):
    write_project(tmp_path, YAML.replace("[main.py, 'lib', 'nothing*.txt']",
                                         "['*']"), {'main.py': 'x'})
    bundle.build(str(tmp_path))
    path = bundle.build(str(tmp_path))
    with tarfile.open(path) as tar:
        assert tar.getnames() == ['boot/system.map', 'zapp.yaml', 'main.py']


def test_bundle_with_nothing_matched(tmp_path):
    write_project(tmp_path, YAML, {})
    with pytest.raises(ProjectError, match='None of the files'):
        bundle.build(str(tmp_path))


def test_bundle_refuses_patterns_outside_the_project(tmp_path):
    write_project(tmp_path, YAML.replace('main.py,', '../secret,'),
                  {'main.py': 'x'})
    with pytest.raises(ProjectError, match="'../secret' points outside"):
        bundle.build(str(tmp_path))


def test_bundle_that_fails_midway_leaves_no_partial_zapp(tmp_path,
                                                          monkeypatch):
    write_project(tmp_path, YAML, {'main.py': 'x'})

    def unreadable(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(tarfile.TarFile, 'add', unreadable)
    with pytest.raises(PermissionError):
        bundle.build(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['main.py', 'zapp.yaml']


@pytest.fixture
def offline_pip(tmp_path, monkeypatch):
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    for key, value in offline_pip_env(str(wheels)).items():
        monkeypatch.setenv(key, value)
    return wheels


def test_bundle_dependencies_from_wheels_and_reuses_them(tmp_path,
                                                         offline_pip):
    pure_wheel(str(offline_pip), 'greet', '1.0',
               {'greet/__init__.py': 'WORD = "hi"\n'})
    root = tmp_path / 'p'
    root.mkdir()
    write_project(root, YAML + "dependencies: [[greet, greet]]\n",
                  {'main.py': 'x'})
    path = bundle.build(str(root))
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert tar.extractfile(
            'lib/python3.15/site-packages/greet/__init__.py').read() == \
            b'WORD = "hi"\n'
    assert 'lib/python3.15/site-packages/greet-1.0.dist-info' in names
    # Installed once: a second bundle reuses .zapp/deps even without the
    # wheel; --refresh-deps goes back to pip.
    os.remove(os.path.join(str(offline_pip), 'greet-1.0-py3-none-any.whl'))
    bundle.build(str(root))
    with pytest.raises(ProjectError, match='pip could not install'):
        bundle.build(str(root), refresh_deps=True)


def test_bundle_dependency_missing_its_module(tmp_path, offline_pip):
    pure_wheel(str(offline_pip), 'greet', '1.0', {'greet.py': ''})
    write_project(tmp_path, YAML + "dependencies: [[greet, salute]]\n",
                  {'main.py': 'x'})
    with pytest.raises(ProjectError, match="installed no module 'salute'"):
        bundle.build(str(tmp_path))

# ------------------------------------------------------------------ deploy


def test_deployed_job_reads_the_stored_zapp_as_image():
    job = [{'name': 'a', 'devices': [{'name': 'image', 'path': 'old'},
                                     {'name': 'stdout'}]},
           {'name': 'b'}]
    assert deploy.with_image(job, 'swift://AUTH_x/c/app.zapp') == [
        {'name': 'a', 'devices': [
            {'name': 'stdout'},
            {'name': 'image', 'path': 'swift://AUTH_x/c/app.zapp'}]},
        {'name': 'b', 'devices': [
            {'name': 'image', 'path': 'swift://AUTH_x/c/app.zapp'}]}]


def test_malformed_devices_pass_through_to_the_proxy():
    job = [{'name': 'a', 'devices': ['stdout', {'name': 'image'}]}]
    assert deploy.with_image(job, 'swift://AUTH_x/c/app.zapp') == [
        {'name': 'a', 'devices': [
            'stdout', {'name': 'image', 'path': 'swift://AUTH_x/c/app.zapp'}]}]


@pytest.mark.parametrize('system_map', ['{"name": "a"}', '["a"]'])
def test_deploy_refuses_a_system_map_that_is_no_job(tmp_path, system_map):
    path = tmp_path / 'odd.zapp'
    with tarfile.open(path, 'w') as tar:
        for name, text in (('boot/system.map', system_map),
                           ('zapp.yaml', 'meta: {name: odd}\nexecution: '
                                         '{groups: [{path: p}]}')):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    with pytest.raises(ProjectError, match='is not a job'):
        deploy.deploy(None, 'c', str(path), force=False)


class RecordingConnection:
    """What deploy() asks of Swift, for an empty account."""
    url = 'http://h/v1/AUTH_x'

    def __init__(self):
        self.calls = []

    def get_container(self, container, **params):
        self.calls.append(('GET', container))
        return {}, []

    def put_object(self, container, name, *args, **kwargs):
        self.calls.append(('PUT', '%s/%s' % (container, name)))


def test_a_broken_page_template_stores_nothing(tmp_path):
    write_project(tmp_path, YAML, {'main.py': 'x',
                                   'index.html.tmpl': '{% if %}'})
    path = bundle.build(str(tmp_path))
    conn = RecordingConnection()
    with pytest.raises(ProjectError, match='cannot render index.html.tmpl'):
        deploy.deploy(conn, 'site', path, force=False)
    assert conn.calls == []


def test_page_is_rendered_escaped(tmp_path):
    project.create_project(str(tmp_path / 'p'), with_ui=True)
    zapp = project.load_zapp(str(tmp_path / 'p'))
    zapp['meta']['name'] = '<script>x</script>'
    zapp['help'] = {'description': 'Counts & sorts',
                    'args': [['n', 'How "many"']]}
    zapp['execution']['groups'][0]['devices'] += [
        {'name': 'input', 'path': 'swift://~/data/in.txt'},
        {'name': 'output', 'path': 'swift://~/data/out.txt'}]
    with open(tmp_path / 'p' / 'index.html.tmpl', 'rb') as handle:
        ui = {'index.html.tmpl': handle.read(), 'style.css': b'body {}'}
    uploads = dict(deploy.ui_uploads(ui, zapp, 'http://h/v1/AUTH_x'))
    assert set(uploads) == {'index.html', 'style.css'}
    page = uploads['index.html'].decode()
    assert '<script>x</script>' not in page
    assert '&lt;script&gt;x&lt;/script&gt;' in page
    assert 'Counts &amp; sorts' in page
    assert 'How &#34;many&#34;' in page
    assert 'data-device="input"' in page and 'value="data/in.txt"' in page
    assert 'value="data/out.txt"' in page


def test_zpm_0_3_templates_get_auth_opts_without_secrets():
    page = deploy.render_page('{{ auth_opts }}', {}, 'http://h/v1/AUTH_x')
    assert json.loads(page) == {'version': '0.0',
                                'swiftUrl': 'http://h/v1/AUTH_x'}

# -------------------------------------------------------------------- auth


AUTH_ENV = ('ST_AUTH', 'ST_USER', 'ST_KEY', 'ST_AUTH_VERSION',
            'OS_AUTH_VERSION', 'OS_IDENTITY_API_VERSION') + tuple(
    'OS_' + name.upper() for name in auth.OS_OPTIONS)


def options_for(monkeypatch, argv, **env):
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = cli.build_parser().parse_args(['auth'] + argv)
    return auth.swift_options(args)


def test_v1_from_the_environment(monkeypatch):
    options = options_for(monkeypatch, [], ST_AUTH='http://a/auth/v1.0',
                          ST_USER='t:u', ST_KEY='k')
    assert (options['auth_version'], options['auth'], options['user'],
            options['key']) == ('1.0', 'http://a/auth/v1.0', 't:u', 'k')


def test_flags_win_over_the_environment(monkeypatch):
    options = options_for(monkeypatch, ['-U', 'x:y', '-K', 'z'],
                          ST_AUTH='http://a/auth/v1.0', ST_USER='t:u',
                          ST_KEY='k')
    assert (options['user'], options['key']) == ('x:y', 'z')


def test_keystone_v2_is_guessed_without_domains(monkeypatch):
    options = options_for(monkeypatch, [], OS_AUTH_URL='http://ks/v2.0',
                          OS_USERNAME='u', OS_PASSWORD='p',
                          OS_TENANT_NAME='t')
    assert options['auth_version'] == '2.0'
    assert (options['auth'], options['user'], options['key']) == (
        'http://ks/v2.0', 'u', 'p')
    assert options['os_options']['tenant_name'] == 't'


def test_keystone_v3_is_guessed_from_domains(monkeypatch):
    options = options_for(monkeypatch, [], OS_AUTH_URL='http://ks/v3',
                          OS_USERNAME='u', OS_PASSWORD='p',
                          OS_PROJECT_NAME='proj',
                          OS_USER_DOMAIN_NAME='Default',
                          OS_PROJECT_DOMAIN_NAME='Default')
    assert options['auth_version'] == '3'
    assert {k: options['os_options'][k] for k in (
        'project_name', 'user_domain_name', 'project_domain_name')} == {
        'project_name': 'proj', 'user_domain_name': 'Default',
        'project_domain_name': 'Default'}


def test_v3_named_explicitly(monkeypatch):
    options = options_for(monkeypatch, ['-V', '3.0'],
                          OS_AUTH_URL='http://ks/v3', OS_USERNAME='u',
                          OS_PASSWORD='p', OS_PROJECT_ID='42')
    assert options['auth_version'] == '3'
    assert options['os_options']['project_id'] == '42'


def test_token_and_storage_url_need_nothing_else(monkeypatch):
    options = options_for(monkeypatch, [], OS_AUTH_TOKEN='AUTH_tk1',
                          OS_STORAGE_URL='http://s/v1/AUTH_x')
    assert options['os_options']['auth_token'] == 'AUTH_tk1'
    assert options['os_options']['object_storage_url'] == \
        'http://s/v1/AUTH_x'


@pytest.mark.parametrize('argv,env,message', [
    ([], {}, 'No credentials'),
    ([], {'ST_AUTH': 'http://a', 'ST_USER': 't:u'},
     'Auth version 2.0 needs .*missing: --os-password'),
    (['-V', '1'], {'ST_AUTH': 'http://a', 'ST_USER': 't:u'},
     'Auth version 1.0 needs .*missing: --key'),
    (['-V', '1.5'], {'ST_AUTH': 'http://a'}, 'Unknown auth version 1.5'),
])
def test_incomplete_credentials_are_refused_before_any_request(
        monkeypatch, argv, env, message):
    with pytest.raises(CredentialsError, match=message):
        options_for(monkeypatch, argv, **env)

# ----------------------------------------------------------------- summary


def test_summary_of_one_node():
    total, [node] = summary.node_summaries({
        'X-Nexe-System': 'hello', 'X-Nexe-Status': 'ok',
        'X-Nexe-Retcode': '0',
        'X-Nexe-Cdr-Line': '0.261, 0.093, 0.01 0.02 3 120 1 13 0 0 0 0'})
    assert total == '0.261'
    assert node.row() == ['hello', 'ok', '0', '0.093', '0.01', '0.02', '3',
                          '120', '1', '13', '0', '0', '0', '0']
    assert not node.failed


def test_summary_shows_bytes_that_were_not_utf8_as_replacement():
    _total, [node] = summary.node_summaries({
        'X-Nexe-System': 'n%FF', 'X-Nexe-Status': 'image: member /%FF',
        'X-Nexe-Retcode': '0'})
    assert (node.name, node.status) == ('n\ufffd', 'image: member /\ufffd')


def test_summary_of_lists_the_server_cut_short_is_no_failure():
    total, nodes = summary.node_summaries({
        'X-Nexe-System': 'map-1,...(299 more)',
        'X-Nexe-Status': 'ok,...(299 more)',
        'X-Nexe-Retcode': '0,...(299 more)',
        'X-Nexe-Cdr-Line': '9.5, 0.2, 0 0 1 10 0 0 0 0 0 0,...(299 more)'})
    assert total == '9.5'
    assert [(n.name, n.failed) for n in nodes] == [
        ('map-1', False), ('...(299 more)', False)]


def test_summary_of_five_nodes_with_failures_and_an_unrun_node():
    cdr = ('1.5, 0.2, 0 0 1 10 0 0 0 0 0 0,0.3, 0 0 2 20 0 0 0 0 0 0,'
           '0.0 0.0 0 0 0 0 0 0 0 0,0.4, 0 0 4 40 1 1 0 0 0 0,'
           '0.5, 0 0 5 50 1 1 0 0 0 0')
    total, nodes = summary.node_summaries({
        'X-Nexe-System': 'map-1,map-2,combiner,red%2Cuce-1,reduce-2',
        'X-Nexe-Status': 'ok,ok,ZeroVM did not run,Killed: memory,ok',
        'X-Nexe-Retcode': '0,0,0,137,3',
        'X-Nexe-Cdr-Line': cdr})
    assert total == '1.5'
    assert [n.name for n in nodes] == ['map-1', 'map-2', 'combiner',
                                       'red,uce-1', 'reduce-2']
    assert [n.time for n in nodes] == ['0.2', '0.3', '-', '0.4', '0.5']
    assert [n.accounting[3] for n in nodes] == ['10', '20', '0', '40', '50']
    assert [n.failed for n in nodes] == [False, False, True, True, True]
    text = summary.table(nodes, total)
    lines = text.splitlines()
    assert lines[0] == 'Execution summary:'
    assert lines[-1] == 'Total time: 1.5'
    assert 'NetworkBytesW' in lines[2]
    assert any('Killed: memory' in line and '137' in line for line in lines)

# ------------------------------------------------------------ command line


def test_version(capsys):
    assert cli.main(['version']) == 0
    line = capsys.readouterr().out.strip()
    with pytest.raises(SystemExit) as done:
        cli.main(['--version'])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == line
    assert line.startswith('zpm version ')


def test_help_lists_commands_and_names_unknown_ones(capsys):
    assert cli.main(['help']) == 0
    out = capsys.readouterr().out
    for name in ('new', 'bundle', 'deploy', 'execute', 'auth', 'version',
                 'help'):
        assert '    %s ' % name in out
    assert cli.main(['help', 'deploy']) == 0
    out = capsys.readouterr().out
    assert out.startswith('usage: zpm deploy')
    assert '--force' in out and '(default: $ST_AUTH)' in out
    assert cli.main(['help', 'nosuch']) == 2
    assert capsys.readouterr().err.startswith('no such command: nosuch')


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([])
    assert done.value.code == 2
    assert 'required: COMMAND' in capsys.readouterr().err


def test_log_level_before_or_after_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    assert parser.parse_args(['-l', 'debug', 'bundle']).log_level == 'debug'
    assert parser.parse_args(['bundle', '-l', 'info']).log_level == 'info'
    assert parser.parse_args(['bundle']).log_level == 'warning'


def test_bundle_outside_a_project_is_one_line(tmp_path, monkeypatch,
                                              capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(['bundle']) == 1
    err = capsys.readouterr().err
    assert err.startswith('zpm: no zapp.yaml found in ')
    assert 'Traceback' not in err


def test_execute_needs_a_zapp_or_container(capsys):
    assert cli.main(['execute']) == 1
    assert 'name a .zapp file or --container' in capsys.readouterr().err


def test_execute_with_container_ignores_the_zapp_as_zpm_0_3(monkeypatch):
    """``zpm execute --container C app.zapp`` (zpm 0.3 scripts) runs the
    deployed job and never reads ``app.zapp``."""
    conn = object()
    posted = []
    monkeypatch.setattr(cli.auth, 'connect', lambda args: conn)
    monkeypatch.setattr(cli.execute, 'post_stored',
                        lambda c, target: posted.append((c, target)) or 'r')
    monkeypatch.setattr(cli.execute, 'post_zapp', lambda c, path: pytest.fail(
        'read the zapp %s' % path))
    monkeypatch.setattr(cli.execute, 'show_answer', lambda resp, s: 0)
    assert cli.main(['execute', '--container', 'c/v2', 'missing.zapp']) == 0
    assert posted == [(conn, 'c/v2')]


class CapabilitiesConn:
    """What ``deploy.page_url`` asks of a swiftclient connection."""
    url = 'http://127.0.0.1:8080/v1/AUTH_test'

    def __init__(self, info):
        self.info = info

    def get_capabilities(self):
        if isinstance(self.info, Exception):
            raise self.info
        return self.info


def test_page_url_is_on_the_accounts_own_host():
    conn = CapabilitiesConn({'account_hosts': {'domain': 'localhost'}})
    assert deploy.page_url(conn, conn.url + '/app/index.html') == \
        'http://auth-test.localhost:8080/v1/AUTH_test/app/index.html'


@pytest.mark.parametrize('info', [
    {'swift': {}}, {'account_hosts': {}},
    ClientException('no /info', http_status=404)])
def test_page_url_without_account_hosts_warns(info, caplog):
    conn = CapabilitiesConn(info)
    url = conn.url + '/app/index.html'
    assert deploy.page_url(conn, url) == url
    assert "signs in only on its account's own host" in caplog.text
