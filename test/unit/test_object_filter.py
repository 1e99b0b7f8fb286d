"""object_query in front of a FakeSwift object server.

Everything that is not an execution request reaches the server untouched;
an execution request that cannot run is refused *before its body is read*,
so the proxy can try another server without having sent it.
"""

import io
import os
import tarfile

import pytest
from swift.common.exceptions import DiskFileNotExist
from swift.common.swob import Request

from test.unit.fakeswift import FakeSwift, RecordingLogger
from zerocloud import protocol
from zerocloud.object.filter import ObjectQueryMiddleware, filter_factory
from zerocloud.options import ConfigError

DEVICE = 'sdb1'
PATH = '/%s/7/AUTH_a/c/o' % DEVICE


class UnreadBody:
    """A request body that fails the test when read."""

    def read(self, *args):
        raise AssertionError('the body was read')

    readline = read


class MissingObjects(FakeSwift):
    """An object server holding no objects."""

    def get_diskfile(self, *args, **kwargs):
        return self

    def open(self):
        raise DiskFileNotExist()


@pytest.fixture
def server(tmp_path) -> MissingObjects:
    (tmp_path / DEVICE).mkdir()
    return MissingObjects(devices=str(tmp_path))


def object_query(app, **conf: str) -> ObjectQueryMiddleware:
    conf.setdefault('mount_check', 'false')
    return ObjectQueryMiddleware(app, conf, RecordingLogger())


def execution(path: str = PATH, **headers: str) -> Request:
    """An execution request as the proxy sends it, with an unread body."""
    base = {protocol.EXECUTE_HEADER: '1.0', protocol.JOB_ID_HEADER: 'job-1',
            'Content-Type': protocol.TAR_CONTENT_TYPE,
            'Content-Length': '1024'}
    base.update(headers)
    req = Request.blank(path, method='POST', headers={
        k: v for k, v in base.items() if v is not None})
    req.environ['wsgi.input'] = UnreadBody()
    return req


@pytest.mark.parametrize('method, headers', [
    ('GET', {}), ('PUT', {}), ('DELETE', {}),
    ('POST', {'X-Object-Meta-Color': 'red'}),      # a metadata POST
    ('GET', {protocol.EXECUTE_HEADER: '1.0'})])    # only POST executes
def test_other_requests_reach_the_server_untouched(server, method, headers):
    server.register(method, PATH, 204, {'X-Marker': 'object-server'})
    req = Request.blank(PATH, method=method, headers=headers)
    original_input = req.environ['wsgi.input']
    resp = req.get_response(object_query(server))
    assert resp.status_int == 204
    assert resp.headers['X-Marker'] == 'object-server'
    [call] = server.calls
    assert (call.method, call.path) == (method, PATH)
    assert call.environ['wsgi.input'] is original_input


@pytest.mark.parametrize('headers, status, text', [
    ({protocol.JOB_ID_HEADER: None}, 400, 'X-Zerocloud-Id header is missing'),
    ({'Content-Type': None}, 400, 'No content type'),
    ({'Content-Type': 'application/json'}, 400, 'Invalid Content-Type'),
    ({'Content-Length': str((1 << 30) + 1)}, 413, 'RPC request too large'),
])
def test_bad_requests_are_refused_unread(server, headers, status, text):
    resp = execution(**headers).get_response(object_query(server))
    assert (resp.status_int, resp.body.decode()) == (status, text)
    assert server.calls == []


def test_request_larger_than_maxinput_is_refused_unread(server):
    mw = object_query(server, zerovm_maxinput='1000')
    resp = execution(**{'Content-Length': '1001'}).get_response(mw)
    assert resp.status_int == 413


def test_missing_device_is_507_unread(server):
    resp = execution('/sdz9/7/AUTH_a/c/o').get_response(object_query(server))
    assert resp.status_int == 507


def test_missing_local_object_is_404_unread(server):
    req = execution(**{protocol.ACCESS_HEADER: 'GET'})
    assert req.get_response(object_query(server)).status_int == 404


def test_full_pool_is_503_with_retry_after_unread(server):
    mw = object_query(server, zerovm_maxpool='1', zerovm_maxqueue='0')
    mw.pool._slots.acquire()       # its one sandbox is busy
    assert mw.pool.full
    resp = execution().get_response(mw)
    assert (resp.status_int, resp.body.decode()) == (503,
                                                     'Slot not available')
    assert resp.headers['Retry-After'] == '1'


def test_an_account_over_its_share_is_503_unread_others_pass(server):
    mw = object_query(server, zerovm_maxpool='2', zerovm_maxqueue='0',
                      zerovm_account_maxpool='1')
    mw.pool._share('AUTH_flood').slots.acquire()   # its one sandbox
    mw.pool._slots.acquire()
    flood = execution(**{protocol.ACCOUNT_HEADER: 'AUTH_flood',
                         protocol.ACCESS_HEADER: 'GET'})
    resp = flood.get_response(mw)
    assert (resp.status_int, resp.headers['Retry-After']) == (503, '1')
    # The job's account counts, not the account of the object in the path
    # (AUTH_a); without the header, the path's account.
    other = execution(**{protocol.ACCOUNT_HEADER: 'AUTH_other',
                         protocol.ACCESS_HEADER: 'GET'})
    assert other.get_response(mw).status_int == 404   # passed the pool
    on_flood = execution('/%s/7/AUTH_flood/c/o' % DEVICE,
                         **{protocol.ACCESS_HEADER: 'GET'})
    assert on_flood.get_response(mw).status_int == 503


def test_account_shares_default_to_half_the_pool_and_queue(server):
    config = object_query(server, zerovm_maxpool='5',
                          zerovm_maxqueue='3').config
    assert (config.account_max_pool, config.account_max_queue) == (3, 2)
    with pytest.raises(ConfigError, match='zerovm_account_maxpool'):
        object_query(server, zerovm_account_maxpool='0')


def test_a_bug_is_a_logged_500_without_its_traceback(server, monkeypatch):
    mw = object_query(server)

    def broken(req):
        raise KeyError('/srv/node/sdb1/secret')
    monkeypatch.setattr(mw, 'execute', broken)
    resp = execution().get_response(mw)
    assert (resp.status_int, resp.body.decode()) == (
        500, 'Internal error running the node')
    [record] = mw.logger.records
    assert record.message == 'zerocloud: node failed on %s' % PATH
    assert "KeyError: '/srv/node/sdb1/secret'" in record.traceback


def test_filter_factory_refuses_a_bad_option_by_name():
    with pytest.raises(ConfigError, match='^zerovm_maxpool must be'):
        filter_factory({}, zerovm_maxpool='lots')


def bad_pax_body() -> bytes:
    """A member stream whose first member's PAX ``size`` is not a number."""
    info = tarfile.TarInfo(protocol.SYSMAP_MEMBER)
    info.size = 2
    info.pax_headers = {'size': 'lots'}
    return info.tobuf(tarfile.PAX_FORMAT) + b'[]' + protocol.padding(2)


@pytest.mark.parametrize('sent, status, text', [
    (None, 400, "Bad request body: bad PAX size 'lots'"),
    # The body stopped arriving: not a malformed stream.
    (700, 499, '<html><h1>Client Disconnect</h1><p>The client was '
               'disconnected during request.</p></html>'),
])
def test_bad_member_stream_is_the_clients_error(server, tmp_path, sent,
                                                status, text):
    body = bad_pax_body()
    ram = tmp_path / 'ram'
    ram.mkdir()
    mw = object_query(server, zerovm_ram_dir=str(ram))
    req = execution('/%s/7/AUTH_a' % DEVICE,
                    **{'Content-Length': str(len(body))})
    req.environ['wsgi.input'] = io.BytesIO(body[:sent])
    resp = req.get_response(mw)
    assert (resp.status_int, resp.body.decode()) == (status, text)
    # Nothing the request held is left behind.
    assert os.listdir(ram) == []
    assert os.listdir(tmp_path / DEVICE / 'tmp') == []
