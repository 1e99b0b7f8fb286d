"""Credentials as the ``swift`` CLI takes them, and a connection made of them.

The flags and their environment defaults are the swift CLI's:

* v1 (tempauth, swauth): ``-A/--auth`` ``$ST_AUTH``, ``-U/--user``
  ``$ST_USER``, ``-K/--key`` ``$ST_KEY``;
* Keystone v2: ``--os-auth-url``, ``--os-username``, ``--os-password``,
  ``--os-tenant-name`` or ``--os-tenant-id`` (``$OS_AUTH_URL`` …);
* Keystone v3: the same with ``--os-project-name``/``--os-project-id`` and
  ``--os-user-domain-name``, ``--os-project-domain-name`` (or the ``-id``
  forms);
* a token you already have: ``--os-auth-token`` and ``--os-storage-url``
  (``$OS_AUTH_TOKEN``, ``$OS_STORAGE_URL``), which win over everything else.

``-V/--auth-version`` defaults to ``$ST_AUTH_VERSION``, ``$OS_AUTH_VERSION``
or ``$OS_IDENTITY_API_VERSION``; without any, or when a version other than
1 lacks v1 values, the version is guessed as the swift CLI does: v1 when
its values are complete, else v3 when a domain is named, else v2.  That
guess, the Keystone options and the authentication itself are
python-swiftclient's own code (``process_options``, ``get_conn``).
"""

import argparse
import os
from typing import Dict, List, Optional, Tuple

from swiftclient.client import Connection
from swiftclient.exceptions import ClientException
from swiftclient.service import get_conn, process_options

#: Keystone options passed through to swiftclient, as ``--os-<name>``.
OS_OPTIONS = ('username', 'user_id', 'password', 'user_domain_name',
              'user_domain_id', 'tenant_name', 'tenant_id', 'project_name',
              'project_id', 'project_domain_name', 'project_domain_id',
              'auth_url', 'auth_token', 'storage_url', 'region_name',
              'service_type', 'endpoint_type')
#: swiftclient reads these too; zpm has no flags for them.
UNSET_OPTIONS = ('os_auth_type', 'os_application_credential_id',
                 'os_application_credential_secret')
AUTH_VERSIONS = ('1', '1.0', '2', '2.0', '3', '3.0')
VERSION_ENV = ('ST_AUTH_VERSION', 'OS_AUTH_VERSION', 'OS_IDENTITY_API_VERSION')
NO_CREDENTIALS = (
    'No credentials: set ST_AUTH, ST_USER and ST_KEY (v1); or OS_AUTH_URL, '
    'OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME or OS_TENANT_NAME '
    '(Keystone); or OS_AUTH_TOKEN and OS_STORAGE_URL; or the matching flags '
    '(zpm help auth)')


class CredentialsError(Exception):
    """Credentials that are missing, cannot work together or were refused."""


def _env(name: str) -> Optional[str]:
    return os.environ.get(name) or None


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    """The swift CLI's authentication flags, defaults from the environment
    read now (so each ``main()`` sees the current environment)."""
    group = parser.add_argument_group('authentication (as the swift CLI)')
    group.add_argument('-A', '--auth', default=_env('ST_AUTH'),
                       help='v1 auth URL (default: $ST_AUTH)')
    group.add_argument('-U', '--user', default=_env('ST_USER'),
                       help='v1 user, account:user (default: $ST_USER)')
    group.add_argument('-K', '--key', default=_env('ST_KEY'),
                       help='v1 key (default: $ST_KEY)')
    group.add_argument('-V', '--auth-version',
                       help='1.0, 2.0 or 3 (default: $ST_AUTH_VERSION, '
                            '$OS_AUTH_VERSION, $OS_IDENTITY_API_VERSION, or '
                            'guessed: 1.0 when the v1 values are complete, '
                            'else 3 when a domain is named, else 2.0)')
    for name in OS_OPTIONS:
        env_name = 'OS_' + name.upper()
        group.add_argument('--os-' + name.replace('_', '-'),
                           dest='os_' + name, default=_env(env_name),
                           help='(default: $%s)' % env_name)


def swift_options(args: argparse.Namespace) -> Dict[str, object]:
    """swiftclient's option dictionary for ``args``, version guessed."""
    options: Dict[str, object] = {'os_' + name: getattr(args, 'os_' + name)
                                  for name in OS_OPTIONS}
    options.update(dict.fromkeys(UNSET_OPTIONS))
    requested = args.auth_version or next(
        (os.environ[name] for name in VERSION_ENV if os.environ.get(name)),
        None)
    if requested is not None and requested not in AUTH_VERSIONS:
        raise CredentialsError('Unknown auth version %s (use 1.0, 2.0 or 3)'
                               % requested)
    options.update(auth=args.auth, user=args.user, key=args.key,
                   auth_version=('1.0' if requested in (None, '1')
                                 else requested))
    if requested in ('1', '1.0'):
        check_complete(options)   # v1 asked for: no guessing
    process_options(options)
    check_complete(options)
    return options


def _missing(options: Dict[str, object], needs: List[Tuple[str, str]]
             ) -> List[str]:
    """Flags (of ``(key, flag)`` pairs; ``a|b`` keys: either) with no value."""
    return [flag for keys, flag in needs
            if not any(options.get(key) for key in keys.split('|'))]


def check_complete(options: Dict[str, object]) -> None:
    """Refuse before any request when the chosen version lacks a value."""
    if options['os_auth_token'] and options['os_storage_url']:
        return
    if not any(options.get(k) for k in ('auth', 'user', 'key')):
        raise CredentialsError(NO_CREDENTIALS)
    version = options['auth_version']
    if version == '1.0':
        needs = [('auth', '--auth'), ('user', '--user'), ('key', '--key')]
    else:
        # swiftclient names a missing tenant or project itself.
        needs = [('auth', '--os-auth-url'),
                 ('user|os_user_id', '--os-username'),
                 ('key', '--os-password')]
    missing = _missing(options, needs)
    if missing:
        raise CredentialsError('Auth version %s needs %s (missing: %s)' % (
            version, ', '.join(flag for _, flag in needs),
            ', '.join(missing)))


def connect(args: argparse.Namespace) -> Connection:
    """An authenticated swiftclient connection (``url`` and ``token`` set).

    Raises CredentialsError (also when the auth service refuses).
    """
    options = swift_options(args)
    conn = get_conn(options)
    if not (conn.url and conn.token):
        try:
            conn.get_auth()
        except ClientException as err:
            raise CredentialsError('authentication failed: %s' % err) \
                from None
    return conn
