"""Trailer fields after a streamed answer: who gets them, their bytes, and
eventlet told to write nothing more."""

import socket

import pytest
from eventlet import wsgi as eventlet_wsgi

from zerocloud.proxy.trailers import STATUS_TRAILER, Trailers, requested


@pytest.mark.parametrize('te, wanted', [
    ('trailers', True), ('gzip, Trailers', True), ('deflate;q=0.5,trailers',
                                                   True),
    ('', False), ('gzip', False), ('trailers-not', False)])
def test_only_a_client_naming_trailers_in_te_gets_them(te, wanted):
    environ = {'HTTP_TE': te} if te else {}
    assert requested(environ) is wanted


class ClientInput:
    """eventlet's request body object: it holds the client's socket."""

    def __init__(self, sock):
        self._sock = sock


def test_a_sub_request_has_no_connection_to_end():
    # make_subrequest copies neither eventlet.input nor TE.
    assert Trailers.for_request({'HTTP_TE': 'trailers'}, ['X-Nexe-Status'])\
        is None
    ours, _theirs = socket.socketpair()
    environ = {'eventlet.input': ClientInput(ours)}
    assert Trailers.for_request(environ, ['X-Nexe-Status']) is None


def test_the_last_chunk_holds_the_status_and_the_announced_fields():
    ours, theirs = socket.socketpair()
    environ = {'HTTP_TE': 'trailers', 'eventlet.input': ClientInput(ours)}
    trailers = Trailers.for_request(
        environ, ['X-Nexe-Status', 'X-Nexe-Retcode', 'X-Nexe-Error'])
    assert trailers.announcement == \
        STATUS_TRAILER + ', X-Nexe-Status, X-Nexe-Retcode, X-Nexe-Error'
    eventlet_wsgi.WSGI_LOCAL.already_handled = False
    trailers.send(422, {'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '5',
                        'X-Nexe-Error': 'Node a failed: caf\xe9\r\nX: 1',
                        'X-Nexe-Policy': 'not announced'})
    assert theirs.recv(1000) == (
        b'0\r\nX-Zerocloud-Status: 422\r\nX-Nexe-Status: ok\r\n'
        b'X-Nexe-Retcode: 5\r\nX-Nexe-Error: Node a failed: caf%C3%A9 X: 1'
        b'\r\n\r\n')
    # eventlet writes no last chunk of its own, and closes the connection.
    assert eventlet_wsgi.WSGI_LOCAL.already_handled is True
    eventlet_wsgi.WSGI_LOCAL.already_handled = False
