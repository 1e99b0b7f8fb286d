"""Account hosts without a cluster: the label rule, the host parsing, what
the filter serves on an account's host, its options."""

import pytest
from swift.common.swob import Request

from zerocloud.account_host import (
    account_url, host_label, host_name, label_of_host)
from zerocloud.options import ConfigError
from zerocloud.proxy.account_hosts import (
    AccountHostsConfig, AccountHostsMiddleware, served_on_account_host)


@pytest.mark.parametrize('account,label', [
    ('AUTH_test', 'auth-test'),
    ('AUTH_test2', 'auth-test2'),
    ('AUTH_0123abcdef', 'auth-0123abcdef'),
    ('SERVICE_a-b', 'service-a-b'),
    # No single host name maps back to these: no host.
    ('AUTH_Test', None),
    ('auth_test', None),
    ('AUTH_a_b', None),
    ('AUTH_', None),
    ('AUTH_-x', None),
    ('AUTH_x-', None),
    ('AUTH', None),
    ('AUTH_' + 'a' * 59, None),
    ('AUTH_t.st', None),
])
def test_host_label_is_one_dns_label_per_account(account, label):
    assert host_label(account) == label


@pytest.mark.parametrize('header,host', [
    ('Auth-Test.Localhost:8080', 'auth-test.localhost'),
    ('auth-test.localhost.', 'auth-test.localhost'),
    ('[::1]:8080', '[::1]'),
    ('127.0.0.1', '127.0.0.1'),
])
def test_host_name_drops_port_case_and_final_dot(header, host):
    assert host_name(header) == host


@pytest.mark.parametrize('header,label', [
    ('auth-test.localhost:8080', 'auth-test'),
    ('x.auth-test.localhost', 'x.auth-test'),
    ('localhost:8080', None),
    ('evil-localhost', None),
    ('127.0.0.1:8080', None),
])
def test_label_of_host(header, label):
    assert label_of_host(header, 'localhost') == label


def test_account_url_keeps_scheme_port_and_path():
    assert account_url('http://127.0.0.1:8080/v1/AUTH_test/app/index.html',
                       'AUTH_test', 'localhost') == \
        'http://auth-test.localhost:8080/v1/AUTH_test/app/index.html'
    assert account_url('https://swift.example.com/v1/AUTH_test/a',
                       'AUTH_test', 'zapp.example.com') == \
        'https://auth-test.zapp.example.com/v1/AUTH_test/a'
    assert account_url('http://h/v1/AUTH_Te/a', 'AUTH_Te', 'd') is None


@pytest.mark.parametrize('path,served', [
    ('/v1/AUTH_test', True),
    ('/v1/AUTH_test/app/index.html', True),
    ('/v1.0/AUTH_test/app', True),
    ('/auth/v1.0', True),
    ('/info', True),
    ('/v1/AUTH_test2/pub/evil.html', False),
    ('/v1/AUTH_testx/c', False),
    ('/open/AUTH_test/app/job.json', False),
    ('/api/AUTH_test/app', False),
    ('/info/x', False),
    ('/', False),
    ('', False),
    ('/healthcheck', False),
])
def test_served_on_account_host(path, served):
    assert served_on_account_host(path, 'auth-test', '/auth/') is served


def app(env, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'served ' + env['PATH_INFO'].encode()]


def call(host, path):
    middleware = AccountHostsMiddleware(app, AccountHostsConfig.from_conf(
        {'account_host_domain': 'zapp.example.com'}))
    return Request.blank(path, headers={'Host': host}).get_response(
        middleware)


def test_account_host_serves_its_account_only():
    assert call('auth-test.zapp.example.com', '/v1/AUTH_test/a/b').body == \
        b'served /v1/AUTH_test/a/b'
    refused = call('auth-test.zapp.example.com:8443',
                   '/v1/AUTH_test2/pub/evil.html')
    assert refused.status_int == 403
    assert refused.body.startswith(b'This host serves only the account '
                                   b'whose host it is (auth-test)')


def test_shared_host_passes_everything():
    assert call('swift.example.com', '/v1/AUTH_test2/pub/evil.html'
                ).status_int == 200
    assert call('zapp.example.com', '/v1/AUTH_test2/x').status_int == 200


def test_a_name_that_is_no_account_host_serves_no_account():
    refused = call('a.auth-test.zapp.example.com', '/v1/AUTH_test/x')
    assert refused.status_int == 403
    assert b'(a.auth-test)' in refused.body
    refused = call('bad_name\x01.zapp.example.com', '/v1/AUTH_test/x')
    assert refused.status_int == 403
    assert b'(not an account host name)' in refused.body


@pytest.mark.parametrize('conf,message', [
    ({}, 'account_host_domain must be a domain name'),
    ({'account_host_domain': 'http://x'}, 'account_host_domain must be'),
    ({'account_host_domain': '.example.com'}, 'account_host_domain must'),
    ({'account_host_domain': 'x.com', 'auth_prefix': 'auth'},
     'auth_prefix must start with /'),
])
def test_bad_options_are_named_at_start(conf, message):
    with pytest.raises(ConfigError, match=message):
        AccountHostsConfig.from_conf(conf)


def test_options_with_defaults():
    assert AccountHostsConfig.from_conf({
        'account_host_domain': 'Zapp.Example.COM.', 'auth_prefix': '/a'}) \
        == AccountHostsConfig('zapp.example.com', '/a/')
