"""The setuid and foreign-origin rules of :mod:`zerocloud.proxy.access`."""

import pytest
from swift.common.swob import HTTPForbidden, Request

from zerocloud.proxy.access import (
    Grants, SetuidGrant, caller_account_candidates, code_paths,
    foreign_write_refusal, is_allowed_write, is_anonymous,
    parse_allowed_writes)
from zerocloud.job.model import JobError, SwiftPath, parse_job


def test_suid_read_part_is_the_whole_acl_write_part_named_entries_only():
    grant = SetuidGrant.parse('AUTH_a', 'c',
                              ' .r:*, .rlistings ,test2:tester2,AUTH_b')
    assert grant.acl(write=False) == '.r:*,.rlistings,test2:tester2,AUTH_b'
    assert grant.acl(write=True) == 'test2:tester2,AUTH_b'


def test_referrer_only_suid_lends_no_writing():
    assert SetuidGrant.parse('AUTH_a', 'c', '.r:*,.rlistings').write_acl == ''


class AclAuth:
    """An auth hook that allows a request when its ACL names ``user``."""

    def __init__(self, user: str):
        self.user = user
        self.seen = []

    def __call__(self, req):
        self.seen.append((req.method, req.path, req.acl))
        if req.acl and self.user in req.acl.split(','):
            return None
        return HTTPForbidden(request=req)


def make_request(method: str, path: str, acl=None) -> Request:
    req = Request.blank(path, environ={'REQUEST_METHOD': method})
    req.acl = acl
    return req


def test_grants_lend_only_within_the_lending_container():
    grants = Grants()
    grants.add(SetuidGrant.parse('AUTH_a', 'app', 'bob,.r:*'))
    hook = grants.wrap(AclAuth('bob'))
    assert hook(make_request('GET', '/v1/AUTH_a/app/data')) is None
    # A symlink target elsewhere keeps the caller's own verdict.
    assert hook(make_request('GET', '/v1/AUTH_a/private/x')) is not None
    assert hook(make_request('GET', '/v1/AUTH_victim/app/x')) is not None


def test_grants_use_the_write_part_for_writes():
    grants = Grants()
    grants.add(SetuidGrant.parse('AUTH_a', 'app', '.r:*,.rlistings'))
    auth = AclAuth('.r:*')
    hook = grants.wrap(auth)
    assert hook(make_request('GET', '/v1/AUTH_a/app/o')) is None
    assert hook(make_request('PUT', '/v1/AUTH_a/app/o')) is not None
    assert hook(make_request('POST', '/v1/AUTH_a/app/o')) is not None


def test_grants_restore_the_requests_own_acl():
    grants = Grants()
    grants.add(SetuidGrant.parse('AUTH_a', 'app', 'bob'))
    req = make_request('GET', '/v1/AUTH_a/app/o', acl='container-acl')
    assert grants.wrap(AclAuth('bob'))(req) is None
    assert req.acl == 'container-acl'


def test_allowed_writes_are_string_prefixes_with_the_account_resolved():
    prefixes = parse_allowed_writes(
        'swift://AUTH_me/out/, swift://~/logs/run-', 'AUTH_req')
    assert prefixes == ['/AUTH_me/out/', '/AUTH_req/logs/run-']
    assert is_allowed_write(SwiftPath('AUTH_me', 'out', 'a'), prefixes)
    assert is_allowed_write(SwiftPath('AUTH_req', 'logs', 'run-1'), prefixes)
    assert not is_allowed_write(SwiftPath('AUTH_me', 'out2', 'a'), prefixes)
    assert not is_allowed_write(SwiftPath('AUTH_req', 'logs', 'x'), prefixes)


@pytest.mark.parametrize('value', ['http://AUTH_me/out', 'swift:///c/o',
                                   'swift://AUTH_*/c', 'AUTH_me/out'])
def test_bad_allowed_write_prefix_is_a_400(value):
    with pytest.raises(JobError) as err:
        parse_allowed_writes(value, 'AUTH_me')
    assert err.value.status == 400
    assert 'X-Zerovm-Allow-Write' in err.value.message


def test_foreign_write_refusal_names_the_origin_the_path_and_the_remedy():
    err = foreign_write_refusal(SwiftPath('AUTH_a', 'drop', 'loot'), 'AUTH_a')
    assert err.status == 403
    for text in ('AUTH_a', 'swift://AUTH_a/drop/loot', 'X-Zerovm-Allow-Write'):
        assert text in err.message


def test_anonymous_callers():
    assert is_anonymous({})
    assert not is_anonymous({'REMOTE_USER': 'test,test:tester,AUTH_test'})
    # keystoneauth: REMOTE_USER is the project (id, name), plus its identity
    assert not is_anonymous({'REMOTE_USER': ('p1', 'demo'),
                             'keystone.identity': {'tenant': ('p1', 'demo')}})


def test_a_client_header_is_no_identity():
    """tempauth passes ``X-Identity-Status`` from the client unchanged."""
    assert is_anonymous({'HTTP_X_IDENTITY_STATUS': 'Confirmed'})
    assert is_anonymous({'HTTP_X_IDENTITY_STATUS': 'Confirmed',
                         'HTTP_X_USER_ID': 'u', 'HTTP_X_ROLES': 'admin',
                         'HTTP_REMOTE_USER': 'test,test:tester,AUTH_test'})


def test_caller_accounts_from_tempauth_groups():
    assert caller_account_candidates(
        {'REMOTE_USER': 'test,test:tester,AUTH_test'}) == ['AUTH_test']
    assert caller_account_candidates(
        {'REMOTE_USER': 'test,test:tester3'}) == []
    assert caller_account_candidates({}) == []
    assert caller_account_candidates({'REMOTE_USER': ('p1', 'demo')}) == []


def test_code_paths_are_what_a_node_runs():
    """Issue 15 item 10: the program, the user image and a script, never
    the data."""
    [node] = parse_job([{
        'name': 'n', 'exec': {'path': 'swift://AUTH_prog/c/app.wasm'},
        'devices': [{'name': 'image', 'path': 'swift://AUTH_img/c/a.tar'},
                    {'name': 'script', 'path': 'swift://AUTH_s/c/s.py'},
                    {'name': 'stdin', 'path': 'swift://AUTH_data/c/in'},
                    {'name': 'stdout', 'path': 'swift://AUTH_data/c/out'}]}],
        account='AUTH_me', sysimages=['python']).nodes
    assert sorted(p.account for p in code_paths(node)) == [
        'AUTH_img', 'AUTH_prog', 'AUTH_s']
    [node] = parse_job([{
        'name': 'n', 'exec': {'path': 'file://python:python'},
        'devices': [{'name': 'python'},
                    {'name': 'stdin', 'path': 'swift://AUTH_data/c/in'}]}],
        account='AUTH_me', sysimages=['python']).nodes
    assert code_paths(node) == []
