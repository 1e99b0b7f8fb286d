"""
account_hosts: each account's pages on an origin of their own
=============================================================

A browser lets a page script every page of its origin (scheme, host,
port): read its inputs, wrap its ``fetch``.  Every object Swift serves under
one host shares one origin, so any account's public page could take the
credentials a user types into another account's zapp page.  This filter
gives each account a host that serves that account only::

    http://auth-test.zapp.example.com/v1/AUTH_test/app/index.html

On a host ``<label>.<account_host_domain>`` a request is served only when
its path is

* ``/<v1 or v1.0>/<account>...`` of the account whose label that is
  (``AUTH_test`` → ``auth-test``: lower case, first ``_`` made ``-``; see
  :mod:`zerocloud.account_host` for which accounts have one);
* under ``auth_prefix`` (the page signs in on its own origin); or
* ``/info`` (the page reads ``account_hosts.domain`` there).

Anything else there (another account's objects, ``/open/`` and ``/api/``
paths, an unknown label) gets ``403`` naming the rule.  Other hosts
(the shared one) pass untouched: this filter only takes away.  The domain
is announced in ``/info`` as ``account_hosts.domain``; ``zpm deploy`` prints
the page's URL on its account host from it, and the page refuses to sign in
anywhere else.

The operator provides the names: a DNS wildcard ``*.<domain>`` pointing at
the proxies (Chromium and Firefox resolve ``*.localhost`` themselves), and
for HTTPS a wildcard certificate.  Everything an account serves shares its
host's origin, including what other accounts write into its containers
through write ACLs and what its symlinks point to: grant those only to
whom you would give your zapp pages.

Pipeline: after anything that rewrites paths (``domain_remap``,
``cname_lookup``), before the auth middleware::

    [pipeline:main]
    pipeline = catch_errors gatekeeper healthcheck proxy-logging cache
               listing_formats account_hosts tempauth job_chain proxy_query
               ... proxy-server

    [filter:account_hosts]
    use = egg:zerocloud#account_hosts
    account_host_domain = zapp.example.com

Options (``[filter:account_hosts]``):

``account_host_domain`` (required)
    the domain whose subdomains are account hosts, e.g. ``zapp.example.com``
    (the all-in-one uses ``localhost``).  Must not be the shared host itself.
``auth_prefix = /auth/``
    the auth middleware's sign-in path (tempauth's ``auth_prefix``).
"""

from dataclasses import dataclass
from typing import Optional

from swift.common.registry import register_swift_info
from swift.common.swob import HTTPForbidden

from zerocloud import options
from zerocloud.account_host import host_label, label_of_host, valid_domain
from zerocloud.options import ConfigError

#: Swift's API versions (``valid_api_versions``' default).
SWIFT_VERSIONS = ('v1', 'v1.0')
INFO_PATH = '/info'


@dataclass(frozen=True)
class AccountHostsConfig:
    domain: str
    auth_prefix: str

    @classmethod
    def from_conf(cls, conf: options.Conf) -> 'AccountHostsConfig':
        raw_domain = options.text(conf, 'account_host_domain', '')
        prefix = options.text(conf, 'auth_prefix', '/auth/')
        domain = raw_domain.lower().rstrip('.')
        if not valid_domain(domain):
            raise ConfigError('account_host_domain must be a domain name '
                              '(e.g. zapp.example.com), not %r' % raw_domain)
        if not prefix.startswith('/'):
            raise ConfigError('auth_prefix must start with /, not %r'
                              % prefix)
        return cls(domain, prefix if prefix.endswith('/') else prefix + '/')


def served_on_account_host(path: str, label: str, sign_in: str) -> bool:
    """Whether the host of account ``label`` serves ``path`` (unquoted)."""
    if path == INFO_PATH or path.startswith(sign_in):
        return True
    segments = path.split('/', 3)
    return (len(segments) >= 3 and segments[0] == '' and
            segments[1] in SWIFT_VERSIONS and
            host_label(segments[2]) == label)


def refusal(label: str) -> str:
    # The label is the host's: lower-case DNS characters only when it
    # matched no account, and the domain's characters; capped anyway.
    return ('This host serves only the account whose host it is (%s): its '
            '/v1/ paths, sign-in and /info.' % label[:100])


class AccountHostsMiddleware:
    def __init__(self, app, config: AccountHostsConfig):
        self.app = app
        self.config = config

    def _label(self, env: dict) -> Optional[str]:
        host = env.get('HTTP_HOST') or env.get('SERVER_NAME') or ''
        return label_of_host(host, self.config.domain)

    def __call__(self, env, start_response):
        label = self._label(env)
        if label is None or served_on_account_host(
                env.get('PATH_INFO', ''), label, self.config.auth_prefix):
            return self.app(env, start_response)
        if not valid_domain(label):
            label = 'not an account host name'
        return HTTPForbidden(body=refusal(label).encode(),
                             content_type='text/plain')(env, start_response)


def filter_factory(global_conf, **local_conf):
    # Checked when the pipeline loads: a bad value stops the server, named.
    config = AccountHostsConfig.from_conf(dict(global_conf, **local_conf))
    register_swift_info('account_hosts', domain=config.domain)

    def factory(app):
        return AccountHostsMiddleware(app, config)
    return factory
