"""Unit tests for zerocloud.cgi: CGI environment and CGI/NPH output."""

import pytest

from zerocloud.cgi import (MAX_HEADER_BYTES, cgi_environ,
                           local_object_environ, parse_cgi_output)


def environ(headers, **kw):
    args = dict(headers=headers, method='POST', path_info='/a',
                query_string='', request_uri='/v1/a', remote_user=None,
                host=None, script_name='sort',
                script_filename='swift://a/c/exe')
    args.update(kw)
    return cgi_environ(**args)


def test_fixed_variables():
    env = environ({'Host': 'example.com:8080'}, query_string='p=1&q=2',
                  request_uri='/open/a/c/app?p=1&q=2', remote_user='bob',
                  method='GET', path_info='/a/c/app')
    assert env == {
        'HTTP_HOST': 'example.com:8080',
        'REQUEST_METHOD': 'GET', 'PATH_INFO': '/a/c/app',
        'REQUEST_URI': '/open/a/c/app?p=1&q=2', 'QUERY_STRING': 'p=1&q=2',
        'REMOTE_USER': 'bob', 'SCRIPT_NAME': 'sort',
        'SCRIPT_FILENAME': 'swift://a/c/exe', 'SERVER_PROTOCOL': 'HTTP/1.0',
        'SERVER_SOFTWARE': 'zerocloud', 'GATEWAY_INTERFACE': 'CGI/1.1',
        'SERVER_NAME': 'example.com', 'SERVER_PORT': '8080'}


def test_empty_optional_variables_are_omitted():
    env = environ({}, remote_user='')
    assert 'QUERY_STRING' not in env and 'REMOTE_USER' not in env
    assert 'SERVER_NAME' not in env


@pytest.mark.parametrize('host, name, port', [
    ('example.com', 'example.com', '80'),
    ('10.0.0.1:81', '10.0.0.1', '81'),
    ('[::1]:8080', '::1', '8080'),
    ('[::1]', '::1', '80'),
    ('h:notaport', 'h', '80'),
])
def test_server_name_and_port(host, name, port):
    env = environ({}, host=host)
    assert (env['SERVER_NAME'], env['SERVER_PORT']) == (name, port)


def test_explicit_host_wins_over_header():
    env = environ({'Host': 'header:1'}, host='given:2')
    assert (env['SERVER_NAME'], env['SERVER_PORT']) == ('given', '2')


def test_credentials_and_internal_headers_never_leak():
    env = environ({
        'X-Auth-Token': 't', 'X-Storage-Token': 't', 'Cookie': 'c=1',
        'X-Backend-Data': 'b', 'X-Backend-Storage-Policy-Index': '0',
        'X-Object-Sysmeta-Foo': 's', 'X-Container-Sysmeta-Bar': 's',
        'X-Account-Sysmeta-Baz': 's', 'Authorization': 'Basic x',
        'X-Service-Token': 's', 'Content-Type': 'application/json',
        'Content-Length': '10', 'x-auth-user': 'u',
        'X-Zerovm-Execute': '1.0', 'X-Trans-Id': 'tx1', 'X-Custom-Thing': 'v',
        'X-Bad': 'a\0b'})
    http = {k for k in env if k.startswith('HTTP_')}
    assert http == {'HTTP_X_ZEROVM_EXECUTE', 'HTTP_X_TRANS_ID',
                    'HTTP_X_CUSTOM_THING'}
    assert 'CONTENT_TYPE' not in env and 'CONTENT_LENGTH' not in env


def test_local_readable_object():
    env = local_object_environ(
        'stdin', '/a/c/o3',
        {'X-Object-Meta-Key1': 'val1', 'x-object-meta-key2': 'val2',
         'X-Timestamp': '1.0', 'ETag': 'abc', 'Content-Encoding': 'gzip',
         'name': '/a/c/o3', 'Content-Length': '5'},
        size=5, content_type='application/x-pickle', writable=False)
    assert env == {
        'LOCAL_DOCUMENT_ROOT': '/dev/stdin', 'LOCAL_OBJECT': 'on',
        'LOCAL_PATH_INFO': '/a/c/o3',
        'LOCAL_CONTENT_TYPE': 'application/x-pickle',
        'LOCAL_CONTENT_LENGTH': '5',
        'LOCAL_HTTP_X_OBJECT_META_KEY1': 'val1',
        'LOCAL_HTTP_X_OBJECT_META_KEY2': 'val2',
        'LOCAL_HTTP_X_TIMESTAMP': '1.0', 'LOCAL_HTTP_ETAG': 'abc',
        'LOCAL_HTTP_CONTENT_ENCODING': 'gzip'}


def test_local_readable_default_type():
    env = local_object_environ('input', '/a/c', {}, size=None,
                               content_type=None, writable=False)
    assert env['LOCAL_CONTENT_TYPE'] == 'application/octet-stream'
    assert 'LOCAL_CONTENT_LENGTH' not in env


def test_local_writable_output():
    env = local_object_environ(
        'stdout', '/a/c/o3', {'X-Object-Meta-Key1': 'val1',
                              'X-Timestamp': 'ignored'},
        size=10, content_type='application/x-pickle', writable=True)
    assert env == {
        'LOCAL_DOCUMENT_ROOT': '/dev/stdout', 'LOCAL_OBJECT': 'on',
        'LOCAL_PATH_INFO': '/a/c/o3',
        'LOCAL_CONTENT_TYPE': 'application/x-pickle',
        'LOCAL_HTTP_X_OBJECT_META_KEY1': 'val1'}


# ---------------------------------------------------------- output parsing

NPH = (b'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n'
       b'X-Object-Meta-Key1: value1\r\nX-Object-Meta-Key2: value2\r\n\r\n'
       b'<html>body</html>')


def test_nph_response():
    parsed = parse_cgi_output(NPH, 'message/http')
    assert (parsed.status, parsed.reason) == (200, 'OK')
    assert parsed.content_type == 'text/html'
    assert parsed.meta == {'Key1': 'value1', 'Key2': 'value2'}
    assert parsed.headers == [('Content-Type', 'text/html'),
                              ('X-Object-Meta-Key1', 'value1'),
                              ('X-Object-Meta-Key2', 'value2')]
    assert NPH[parsed.body_offset:] == b'<html>body</html>'


def test_nph_without_reason_uses_standard_phrase():
    parsed = parse_cgi_output(b'HTTP/1.0 404\n\nmissing', 'message/http')
    assert (parsed.status, parsed.reason, parsed.body_offset) == \
        (404, 'Not Found', 14)


def test_cgi_default_status_and_bare_newlines():
    out = b'Content-Type: text/plain\nX-Seq-Start: 1\n\nhello'
    parsed = parse_cgi_output(out, 'message/cgi')
    assert (parsed.status, parsed.reason) == (200, 'OK')
    assert parsed.headers == [('Content-Type', 'text/plain'),
                              ('X-Seq-Start', '1')]
    assert out[parsed.body_offset:] == b'hello'


def test_cgi_status_header():
    out = b'Status: 201 Created\r\nContent-Type: application/json\r\n\r\n{}'
    parsed = parse_cgi_output(out, 'message/cgi')
    assert (parsed.status, parsed.reason) == (201, 'Created')
    assert parsed.headers == [('Content-Type', 'application/json')]
    assert out[parsed.body_offset:] == b'{}'
    parsed = parse_cgi_output(b'Status: 418\n\n', 'message/cgi')
    assert (parsed.status, parsed.reason) == (418, "I'm a Teapot")


def test_headers_only_output_at_eof():
    out = b'Content-Length: 42\nX-Seq-End: 5\n'
    assert parse_cgi_output(out, 'message/cgi') is None
    parsed = parse_cgi_output(out, 'message/cgi', at_eof=True)
    assert parsed.headers == [('Content-Length', '42'), ('X-Seq-End', '5')]
    assert parsed.body_offset == len(out)
    parsed = parse_cgi_output(b'Content-Type: a/b', 'message/cgi',
                              at_eof=True)
    assert parsed.content_type == 'a/b'


@pytest.mark.parametrize('out, kind', [
    (b'hello world\n\n', 'message/cgi'),
    (b'Bad Header Name: x\n\n', 'message/cgi'),
    (b'Status: abc\n\n', 'message/cgi'),
    (b'Status: 999 Nope\n\n', 'message/cgi'),
    (b'Content-Type: text/html\n\n', 'message/http'),
    (b'HTTP/1.1 OK\n\n', 'message/http'),
    (b'HTTP/1.1 200 OK\n folded\n\n', 'message/http'),
    (b'', 'message/http'),
    (b'Content-Type: text/html\n', 'message/cgi'),
    (b'HTTP/1.1 200 OK\n\n', 'text/plain'),
])
def test_unparsable_output(out, kind):
    assert parse_cgi_output(out, kind) is None


def test_header_block_is_bounded():
    huge = b'X-A: ' + b'x' * MAX_HEADER_BYTES + b'\n\nbody'
    assert parse_cgi_output(huge, 'message/cgi') is None
    assert parse_cgi_output(huge, 'message/cgi', at_eof=True) is None


def test_empty_header_block_for_cgi():
    parsed = parse_cgi_output(b'\nbody', 'message/cgi')
    assert (parsed.status, parsed.headers, parsed.body_offset) == \
        (200, [], 1)
