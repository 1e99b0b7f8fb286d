"""Attacks with odd text: non-Latin-1 characters, bad UTF-8, control bytes.

Issue #8 item 6: a node's last stderr line with ``☃`` or invalid UTF-8, a
node named ``☃`` or a zapp member ``/☃`` ended up in an ``X-Nexe-*``
response header that eventlet cannot encode: the object server dropped the
connection, the proxy retried and answered 503, and after ~30 such jobs Swift
error-limited the object servers so plain GET/PUT answered 503 for everyone.
Item 11: an unpacking error carried an ``OSError`` string with the object
server's host path to the client, raw control bytes from stderr reached
``X-Nexe-Error``, and a node name with ``,`` passed validation.

Every ``X-Nexe-*`` value is now percent-encoded UTF-8 outside printable
ASCII (and ``,``); these tests decode it with ``urllib.parse.unquote``.

* ``☃``, invalid UTF-8 and control bytes as a failed program's last stderr
  line: the answer arrives, ``X-Nexe-Error`` encoded and readable;
* node names ``☃``, ``a,b``, ``a b``, ``..``: 400 at the proxy, while
  names made by ``count`` still run;
* a zapp holding a member ``/☃`` (its refusal status quoted the name): a
  clean 422, and 40 such jobs in a row leave plain PUT/GET working;
* a zapp whose member ``a/b`` lies below the file ``a``: the error names the
  member, not the object server's paths or an ``Errno``.
"""

from urllib.parse import unquote

import pytest

from .helpers import Account, python_node, run_python, store_zapp, unique

#: Jobs in a row that used to make Swift error-limit every object server.
BAD_JOBS_IN_A_ROW = 40


@pytest.fixture(scope='module')
def account(cluster) -> Account:
    return Account(cluster)


@pytest.fixture(scope='module')
def container(account) -> str:
    name = unique('attack-text')
    account.put_container(name)
    return name


def test_snowman_on_stderr_reaches_the_client_encoded(account, container):
    resp = run_python(account, container,
                      'import sys\nsys.stderr.write("\\u2603\\n")\n'
                      'sys.exit(1)\n')
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-Retcode'] == '1'
    error = resp.headers['X-Nexe-Error']
    assert error == 'bad return code: %E2%98%83'
    assert unquote(error) == 'bad return code: \u2603'


def test_invalid_utf8_on_stderr_keeps_its_bytes(account, container):
    resp = run_python(account, container,
                      'import sys\nsys.stderr.buffer.write(b"bad \\xff\\xfe '
                      'end\\n")\nsys.stderr.flush()\nsys.exit(1)\n')
    assert resp.status_code == 200, resp.text
    error = resp.headers['X-Nexe-Error']
    assert error == 'bad return code: bad %FF%FE end'
    assert unquote(error, errors='surrogateescape') == \
        'bad return code: bad \udcff\udcfe end'


def test_control_bytes_on_stderr_are_removed(account, container):
    resp = run_python(account, container,
                      'import sys\nsys.stderr.write("red\\x1b[31m, '
                      'bell\\x07\\r\\n")\nsys.exit(2)\n')
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-Error'] == 'bad return code: red[31m%2C bell'


@pytest.mark.parametrize('name', ['\u2603', 'a,b', 'a b', '..'])
def test_node_name_outside_the_allowed_set_is_400(account, container, name):
    image = store_zapp(account, container, {'main.py': 'print(1)\n'})
    resp = account.post_job([python_node(name, image,
                                         devices=[{'name': 'stdout'}])])
    assert resp.status_code == 400
    assert resp.text.startswith('Invalid node name')


def test_counted_node_names_still_run(account, container):
    image = store_zapp(account, container, {'main.py': 'print("hi")\n'})
    resp = account.post_job([python_node('w.1_x', image, count=2,
                                         devices=[{'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'w.1_x-1,w.1_x-2'


def test_snowman_member_in_the_image_is_a_clean_422(account, container):
    image = store_zapp(account, container, {'main.py': 'print(1)\n',
                                             '/\u2603': 'x'})
    resp = account.post_job([python_node('py', image,
                                         devices=[{'name': 'stdout'}])])
    assert resp.status_code == 422, resp.text
    status = resp.headers['X-Nexe-Status']
    assert status == 'image /dev/image: absolute member name /%E2%98%83'
    assert unquote(status) in unquote(resp.text)


def test_bad_jobs_in_a_row_leave_the_object_servers_in_service(
        account, container):
    image = store_zapp(account, container, {'main.py': 'print(1)\n',
                                             '/\u2603': 'x'})
    job = [python_node('py', image, devices=[{'name': 'stdout'}])]
    statuses = [account.post_job(job).status_code
                for _ in range(BAD_JOBS_IN_A_ROW)]
    assert statuses == [422] * BAD_JOBS_IN_A_ROW
    account.put_object(container, 'after-attack', b'still here')
    resp = account.get('%s/after-attack' % container)
    assert resp.status_code == 200
    assert resp.content == b'still here'


def test_tar_error_names_the_member_not_the_host_path(cluster, account,
                                                      container):
    # 'a' is a file, so 'a/b' cannot be unpacked below it.
    image = store_zapp(account, container, {'main.py': 'print(1)\n',
                                             'a': 'file', 'a/b': 'below'})
    resp = account.post_job([python_node('py', image,
                                         devices=[{'name': 'stdout'}])])
    assert resp.status_code == 422, resp.text
    for text in (resp.text, resp.headers['X-Nexe-Status'],
                 resp.headers['X-Nexe-Error']):
        assert 'a/b' in text
        for leak in ('/srv/', '/tmp/', 'Errno', 'zerocloud-', '.zvm-run',
                     cluster.workdir):
            assert leak not in text
