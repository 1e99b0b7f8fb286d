"""Unit tests for zerocloud.cgi: CGI environment and CGI/NPH output."""

import pytest

from zerocloud.cgi import (
    MAX_HEADER_BYTES, MAX_HEADER_COUNT, InvalidCgiOutput, cgi_environ,
    forwardable_header, local_object_environ, parse_cgi_output,
    percent_encode_8bit, program_may_set)


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
    out = b'Content-Type: text/plain\nCache-Control: no-cache\n\nhello'
    parsed = parse_cgi_output(out, 'message/cgi')
    assert (parsed.status, parsed.reason) == (200, 'OK')
    assert parsed.headers == [('Content-Type', 'text/plain'),
                              ('Cache-Control', 'no-cache')]
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
    out = b'X-Object-Meta-Start: 42\nETag: "5"\n'
    assert parse_cgi_output(out, 'message/cgi') is None
    parsed = parse_cgi_output(out, 'message/cgi', at_eof=True)
    assert parsed.headers == [('X-Object-Meta-Start', '42'), ('ETag', '"5"')]
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


@pytest.mark.parametrize('at_eof', [False, True])
def test_header_block_is_bounded_in_size(at_eof):
    huge = b'X-A: ' + b'x' * MAX_HEADER_BYTES + b'\n\nbody'
    with pytest.raises(InvalidCgiOutput, match='invalid CGI output: the '
                       'header block does not end within 65536 bytes'):
        parse_cgi_output(huge, 'message/cgi', at_eof=at_eof)
    long_lines = b'X-A: %s\n' % (b'x' * 1200) * (MAX_HEADER_COUNT - 4)
    with pytest.raises(InvalidCgiOutput, match='does not end within'):
        parse_cgi_output(b'HTTP/1.1 200 OK\n' + long_lines, 'message/http',
                         at_eof=at_eof)


def test_headers_only_output_may_fill_the_block():
    out = b'X-A: ' + b'x' * (MAX_HEADER_BYTES - 6) + b'\n'
    parsed = parse_cgi_output(out, 'message/cgi', at_eof=True)
    assert parsed.body_offset == MAX_HEADER_BYTES


def test_not_this_format_wins_over_later_lines():
    out = b'Content-Type: text/html\r\nX-Foo: \x00\r\n\r\n'
    assert parse_cgi_output(out, 'message/http') is None
    assert parse_cgi_output(b'Status: 999\nX-Foo: \x00\n\n',
                            'message/cgi') is None


def test_output_without_header_lines_is_not_too_large():
    binary = b'\x89PNG' + b'\x00' * MAX_HEADER_BYTES
    assert parse_cgi_output(binary, 'message/cgi') is None


def test_header_block_is_bounded_in_count():
    def block(count):
        return b''.join(b'X-Object-Meta-H%d: v\n' % i
                        for i in range(count)) + b'\nbody'
    parsed = parse_cgi_output(b'Status: 200\n' + block(MAX_HEADER_COUNT),
                              'message/cgi')
    assert len(parsed.headers) == MAX_HEADER_COUNT
    with pytest.raises(InvalidCgiOutput, match='more than 64 headers'):
        parse_cgi_output(block(MAX_HEADER_COUNT + 1), 'message/cgi')
    with pytest.raises(InvalidCgiOutput, match='more than 64 headers'):
        parse_cgi_output(b'HTTP/1.1 200 OK\n' + block(MAX_HEADER_COUNT + 1),
                         'message/http')


def test_empty_header_block_for_cgi():
    parsed = parse_cgi_output(b'\nbody', 'message/cgi')
    assert (parsed.status, parsed.headers, parsed.body_offset) == \
        (200, [], 1)


@pytest.mark.parametrize('kind, status_line', [
    ('message/cgi', b'Status: 304 Not Modified\r\n'),
    ('message/http', b'HTTP/1.1 304 Not Modified\r\n'),
])
def test_framing_and_hop_by_hop_headers_are_dropped(kind, status_line):
    out = (status_line + b'Transfer-Encoding: chunked\r\n'
           b'Content-Length: 3\r\nConnection: close, X-Private\r\n'
           b'Keep-Alive: timeout=5\r\nUpgrade: h2c\r\nTrailer: X-Sum\r\n'
           b'TE: trailers\r\nProxy-Connection: close\r\n'
           b'X-Private: secret\r\nETag: "1"\r\nContent-Type: text/plain'
           b'\r\n\r\nbody')
    parsed = parse_cgi_output(out, kind)
    assert parsed.status == 304
    assert parsed.headers == [('ETag', '"1"'), ('Content-Type', 'text/plain')]
    assert parsed.content_type == 'text/plain'
    assert out[parsed.body_offset:] == b'body'


@pytest.mark.parametrize('line, problem', [
    (b'X-Foo: a\rb', 'header X-Foo contains a control character'),
    (b'X-Foo: a\x00b', 'header X-Foo contains a control character'),
    (b'X-Foo: a\x1bb', 'header X-Foo contains a control character'),
    (b'X-Foo: a\x7f', 'header X-Foo contains a control character'),
    (b'X-Foo: a\r', 'header X-Foo contains a control character'),
    (b'X-\x00Foo: a', 'the header name on line 2 contains a control'),
    (b'X-Fo\ro: a', 'the header name on line 2 contains a control'),
    (b'Status: 200 O\x00K', 'header Status contains a control character'),
    (b'Status: 101 Switching Protocols',
     'status 101 is informational (1xx), not a final response'),
    (b'Status: 100', 'status 100 is informational'),
])
def test_unsafe_cgi_header_lines_are_refused(line, problem):
    out = b'Content-Type: text/plain\r\n' + line + b'\r\n\r\nbody'
    with pytest.raises(InvalidCgiOutput) as raised:
        parse_cgi_output(out, 'message/cgi')
    assert str(raised.value).startswith('invalid CGI output: ' + problem)


@pytest.mark.parametrize('out, problem', [
    (b'HTTP/1.1 103 Early Hints\r\n\r\n', 'status 103 is informational'),
    (b'HTTP/1.1 200 O\rK\r\n\r\n', 'the status line contains a control'),
    (b'HTTP/1.1 200 OK\r\nX-Foo: \x00\r\n\r\n', 'header X-Foo contains'),
])
def test_unsafe_nph_output_is_refused(out, problem):
    with pytest.raises(InvalidCgiOutput, match='invalid CGI output: ' +
                       problem):
        parse_cgi_output(out, 'message/http')


def test_tab_and_crlf_are_allowed():
    parsed = parse_cgi_output(b'Cache-Control:\ta\tb \r\n\r\n',
                              'message/cgi')
    assert parsed.headers == [('Cache-Control', 'a\tb')]


def test_8bit_header_bytes_are_percent_encoded():
    out = (b'Status: 200 \xc3\xa9t\xe9\r\n'
           b'Content-Disposition: caf\xc3\xa9 \xff, 100%\r\n'
           b'X-Object-Meta-City: Z\xc3\xbcrich\r\n\r\n\xff')
    parsed = parse_cgi_output(out, 'message/cgi')
    assert parsed.reason == '%C3%A9t%E9'
    assert parsed.headers == [('Content-Disposition', 'caf%C3%A9 %FF, 100%'),
                              ('X-Object-Meta-City', 'Z%C3%BCrich')]
    assert parsed.meta == {'City': 'Z%C3%BCrich'}
    assert out[parsed.body_offset:] == b'\xff'


def test_percent_encode_8bit_keeps_printable_ascii():
    printable = ''.join(map(chr, range(0x20, 0x7f)))
    assert percent_encode_8bit(printable) == printable
    assert percent_encode_8bit('\x80\xa0\xff') == '%80%A0%FF'


@pytest.mark.parametrize('name, value, forwardable', [
    ('X-App', 'a, b; c=%41\t', True),
    ('Transfer-Encoding', 'chunked', False),
    ('content-length', '3', False),
    ('Connection', 'close', False),
    ('Upgrade', 'h2c', False),
    ('X-App', 'a\r\nSet-Cookie: x', False),
    ('X-App', 'caf\xe9', False),
    ('X App', 'v', False),
])
def test_forwardable_header(name, value, forwardable):
    assert forwardable_header(name, value) is forwardable


def test_a_program_sets_only_the_headers_of_its_own_answer():
    """Issue 15 item 8: an allow-list; CORS, cookies, auth and Swift's
    headers are never the program's."""
    allowed = (b'Content-Type: text/html\r\nLocation: /x\r\n'
               b'Cache-Control: no-store\r\n'
               b'Content-Disposition: attachment\r\n'
               b'Last-Modified: Sat, 01 Jan 2000 00:00:00 GMT\r\n'
               b'ETag: "e"\r\nX-Object-Meta-Color: red\r\n'
               b'X-Zerovm-Execute: 1.0\r\n')
    refused = (b'Access-Control-Allow-Origin: https://evil.example\r\n'
               b'Access-Control-Allow-Credentials: true\r\n'
               b'Set-Cookie: s=1\r\nWWW-Authenticate: Basic\r\n'
               b'X-Auth-Token: t\r\nX-Nexe-Status: ok\r\n'
               b'X-Container-Meta-A: b\r\nX-Object-Meta-: empty\r\n'
               b'Vary: Origin\r\nX-Custom: 1\r\n')
    for kind, first in (('message/cgi', b''),
                        ('message/http', b'HTTP/1.1 200 OK\r\n')):
        parsed = parse_cgi_output(first + refused + allowed + b'\r\nbody',
                                  kind)
        assert [name for name, _ in parsed.headers] == [
            'Content-Type', 'Location', 'Cache-Control',
            'Content-Disposition', 'Last-Modified', 'ETag',
            'X-Object-Meta-Color', 'X-Zerovm-Execute']


@pytest.mark.parametrize('name, allowed', [
    ('content-type', True), ('ETAG', True), ('X-Object-Meta-A', True),
    ('x-zerovm-execute', True), ('Access-Control-Allow-Origin', False),
    ('Access-Control-Allow-Credentials', False), ('Set-Cookie', False),
    ('X-Object-Meta-', False), ('Status', False), ('X-Nexe-Error', False)])
def test_program_may_set(name, allowed):
    assert program_may_set(name) is allowed
