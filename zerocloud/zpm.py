"""zpm: the ZeroCloud command-line client.

``zpm auth`` authenticates like the ``swift`` CLI and prints the token and the
storage URL, ready for ``OS_AUTH_TOKEN`` / ``OS_STORAGE_URL``::

    $ zpm auth
    Auth token: AUTH_tk...
    Storage URL: http://127.0.0.1:8080/v1/AUTH_test

Credentials come from flags or the environment, as for ``swift``:

* v1 (tempauth): ``--auth/-A`` ``$ST_AUTH``, ``--user/-U`` ``$ST_USER``,
  ``--key/-K`` ``$ST_KEY``;
* Keystone v2: ``--os-auth-url`` ``--os-username`` ``--os-password``
  ``--os-tenant-name`` (``$OS_AUTH_URL`` …);
* Keystone v3: the same plus ``--os-project-name`` and the domain options.

Without ``--auth-version`` the version is guessed: v1 when the v1 values are
complete, else v3 when a project or domain is named, else v2.
"""

import argparse
import os
import sys
from typing import List, Optional

from swiftclient import client as swift_client
from swiftclient.exceptions import ClientException

V1_KEYS = ('auth', 'user', 'key')
KEYSTONE_KEYS = ('os_auth_url', 'os_username', 'os_password')
V3_HINTS = ('os_project_name', 'os_project_id', 'os_user_domain_name',
            'os_project_domain_name', 'os_user_domain_id',
            'os_project_domain_id')


class UsageError(Exception):
    """Missing or contradictory credentials."""


def _env(name: str) -> Optional[str]:
    return os.environ.get(name) or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='zpm', description='ZeroCloud client')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    auth = sub.add_parser('auth', help='print an auth token and storage URL')
    auth.add_argument('-A', '--auth', default=_env('ST_AUTH'))
    auth.add_argument('-U', '--user', default=_env('ST_USER'))
    auth.add_argument('-K', '--key', default=_env('ST_KEY'))
    auth.add_argument('-V', '--auth-version',
                      choices=('1', '1.0', '2', '2.0', '3', '3.0'))
    for name in ('auth_url', 'username', 'password', 'tenant_name',
                 'project_name', 'project_id', 'user_domain_name',
                 'project_domain_name', 'user_domain_id',
                 'project_domain_id'):
        auth.add_argument('--os-' + name.replace('_', '-'),
                          dest='os_' + name,
                          default=_env('OS_' + name.upper()))
    return parser


def guess_version(args: argparse.Namespace) -> str:
    if args.auth_version:
        return args.auth_version[0]
    if all(getattr(args, k) for k in V1_KEYS):
        return '1'
    if all(getattr(args, k) for k in KEYSTONE_KEYS):
        return '3' if any(getattr(args, k) for k in V3_HINTS) else '2'
    raise UsageError(
        'No credentials: set ST_AUTH, ST_USER and ST_KEY (v1) or OS_AUTH_URL, '
        'OS_USERNAME and OS_PASSWORD (Keystone), or pass the matching flags')


def authenticate(args: argparse.Namespace):
    version = guess_version(args)
    if version == '1':
        missing = [k for k in V1_KEYS if not getattr(args, k)]
        if missing:
            raise UsageError('v1 auth needs --auth, --user and --key '
                             '(missing: %s)' % ', '.join(missing))
        return swift_client.get_auth(args.auth, args.user, args.key,
                                     auth_version='1.0')
    missing = [k for k in KEYSTONE_KEYS if not getattr(args, k)]
    if missing:
        raise UsageError('Keystone auth needs --os-auth-url, --os-username '
                         'and --os-password (missing: %s)'
                         % ', '.join(missing))
    os_options = {k[3:]: getattr(args, k) for k in V3_HINTS + (
        'os_tenant_name',) if getattr(args, k)}
    return swift_client.get_auth(
        args.os_auth_url, args.os_username, args.os_password,
        auth_version=version + '.0', os_options=os_options,
        tenant_name=args.os_tenant_name)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        url, token = authenticate(args)
    except UsageError as err:
        print('zpm: %s' % err, file=sys.stderr)
        return 1
    except (ClientException, OSError) as err:
        print('zpm: authentication failed: %s' % err, file=sys.stderr)
        return 1
    print('Auth token: %s' % token)
    print('Storage URL: %s' % url)
    return 0


if __name__ == '__main__':
    sys.exit(main())
