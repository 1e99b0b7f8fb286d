"""An account's own host name: the origin its pages share with no one else.

Browsers isolate pages by origin (scheme, host, port).  Every page Swift
serves under one host shares one origin, so a page of any account can
script any other account's page there.  The ``account_hosts`` proxy filter
(:mod:`zerocloud.proxy.account_hosts`) gives each account a host of its own,
``<label>.<domain>``, that serves only that account; ``zpm deploy`` prints a
zapp page's URL on it, and the page signs in only there.

The label is the account name in lower case with its first ``_`` made a
``-`` (``AUTH_test`` → ``auth-test``), as Swift's ``domain_remap`` reads
host names.  Only accounts whose label maps back to one account name have
one: a reseller prefix of capitals and digits, ``_``, then lowercase
letters, digits and ``-`` (keystone's ``AUTH_<project id>`` and tempauth's
usual names), at most 63 characters.
"""

import re
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

#: Accounts that have a host: one label, unambiguous back to the account.
_HOSTED_ACCOUNT = re.compile(r'[A-Z][A-Z0-9]*_[a-z0-9](?:[a-z0-9-]*[a-z0-9])?')
MAX_LABEL = 63
#: The domain itself: DNS labels of letters, digits and hyphens.
_DOMAIN = re.compile(r'(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*'
                     r'[a-z0-9](?:[a-z0-9-]*[a-z0-9])?')


def host_label(account: str) -> Optional[str]:
    """``auth-test`` for ``AUTH_test``; None for an account without a host."""
    if len(account) > MAX_LABEL or not _HOSTED_ACCOUNT.fullmatch(account):
        return None
    return account.lower().replace('_', '-', 1)


def valid_domain(domain: str) -> bool:
    return bool(_DOMAIN.fullmatch(domain))


def host_name(host_header: str) -> str:
    """The host of a ``Host`` header, lower case, without port or final
    dot (``[::1]:8080`` → ``[::1]``)."""
    host = host_header.strip().lower()
    if host.startswith('['):
        host = host.partition(']')[0] + ']'
    else:
        host = host.partition(':')[0]
    return host.rstrip('.')


def label_of_host(host_header: str, domain: str) -> Optional[str]:
    """What precedes ``.<domain>`` in the host (may hold dots: no account's
    label matches it then); None for a host outside the domain."""
    host = host_name(host_header)
    suffix = '.' + domain
    if not host.endswith(suffix) or host == suffix[1:]:
        return None
    return host[:-len(suffix)]


def account_url(url: str, account: str, domain: str) -> Optional[str]:
    """``url`` (on the shared host) moved to the account's host, same scheme,
    port and path; None for an account without a host."""
    label = host_label(account)
    if label is None:
        return None
    parts = urlsplit(url)
    netloc = '%s.%s' % (label, domain)
    if parts.port is not None:
        netloc += ':%d' % parts.port
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query,
                       parts.fragment))
