"""Swift's CORS rules as zerocloud.proxy.cors applies them to job answers
(the functional tests run them through a real proxy)."""

from swift.common.swob import Request

from zerocloud.proxy import cors

ANSWER = [('Content-Type', 'text/plain'), ('X-Nexe-Status', 'ok'),
          ('X-Object-Meta-Color', 'red'), ('X-Other', '1'),
          ('Access-Control-Allow-Origin', '*'), ('Vary', 'Accept')]


def test_origin_allowed_by_container_or_proxy():
    container = {'allow_origin': 'http://a.example http://b.example'}
    assert cors.origin_allowed(container, 'http://b.example', [])
    assert not cors.origin_allowed(container, 'http://c.example', [])
    assert cors.origin_allowed({}, 'http://c.example', ['http://c.example'])
    assert cors.origin_allowed({'allow_origin': '*'}, 'http://x', [])
    assert not cors.origin_allowed({'allow_origin': None}, 'http://x', [])


def test_named_origin_is_echoed_with_vary_and_exposed_headers():
    headers = cors.cors_headers(ANSWER, {'allow_origin': 'http://a.example',
                                         'expose_headers': 'X-Custom'},
                                'http://a.example', ['X-Operator'])
    by_name = dict(headers)
    assert by_name['Access-Control-Allow-Origin'] == 'http://a.example'
    assert by_name['Vary'] == 'Accept, Origin'
    exposed = by_name['Access-Control-Expose-Headers'].split(', ')
    assert {'x-nexe-status', 'x-object-meta-color', 'x-custom',
            'x-operator', 'etag', 'content-type'} <= set(exposed)
    assert 'x-other' not in exposed
    # The program's own Access-Control-Allow-Origin is gone.
    assert [k for k, _ in headers].count('Access-Control-Allow-Origin') == 1


def test_wildcard_container_answers_star_without_vary():
    headers = dict(cors.cors_headers([('X-Nexe-Status', 'ok')],
                                     {'allow_origin': '*'}, 'http://z', []))
    assert headers['Access-Control-Allow-Origin'] == '*'
    assert 'Vary' not in headers


def test_answers_without_a_container_carry_no_cors_at_all():
    """Issue 15 item 8: an account-level (or chained) job's answer loses
    every Access-Control-* header, with or without Origin."""
    for headers in ({'Origin': 'https://evil.example'}, {}):
        req = Request.blank('/v1/AUTH_a', method='POST', headers=headers)
        sent = []
        start = cors.cors_start_response(
            req, None, lambda status, answer, exc_info=None:
            sent.append(answer))
        start('200 OK', ANSWER + [
            ('Access-Control-Allow-Credentials', 'true')])
        assert [k for k, _ in sent[0]] == [
            'Content-Type', 'X-Nexe-Status', 'X-Object-Meta-Color',
            'X-Other', 'Vary']
