"""zpm: the ZeroCloud command-line client (zpm 0.3's commands, fixed).

::

    zpm new [DIR] [--with-ui]        a project: zapp.yaml, main.py (+ page)
    zpm bundle [--refresh-deps]      DIR/<meta.name>.zapp
    zpm deploy TARGET ZAPP [--force] [--execute] [--summary]
    zpm execute ZAPP | --container TARGET [ZAPP] [--summary]
    zpm auth                         print a token and the storage URL
    zpm version | zpm --version
    zpm help [COMMAND]

``-l/--log-level`` (before or after the command) sets the logging level;
``debug`` also shows swiftclient's requests.  Errors print one
``zpm: ...`` line and exit 1; usage errors exit 2.  Authentication is the
swift CLI's (:mod:`zerocloud.zpm.auth`).
"""

import argparse
import logging
import os
import sys
from importlib import metadata
from typing import List, Optional

import requests
from swiftclient.exceptions import ClientException

from zerocloud.zpm import auth, bundle, deploy, execute, project
from zerocloud.zpm.auth import CredentialsError
from zerocloud.zpm.project import ProjectError

LOG = logging.getLogger('zpm')
LOG_LEVELS = ('debug', 'info', 'warning', 'error', 'critical')


def version() -> str:
    return metadata.version('zerocloud')


def _log_level(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument('-l', '--log-level', choices=LOG_LEVELS,
                        default=default,
                        help='logging level (default: warning)')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='zpm', description='ZeroCloud client: build, deploy and run '
        'zapps.')
    parser.add_argument('--version', action='version',
                        version='zpm version %s' % version())
    _log_level(parser, 'warning')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        # Also after the command, as zpm 0.3 took it; SUPPRESS keeps the
        # main parser's value when it is not given here.
        _log_level(sub, argparse.SUPPRESS)
        return sub

    new = command('new', 'create a zapp project (refuses to overwrite)')
    new.add_argument('directory', nargs='?', default='.',
                     help='where (default: the current directory)')
    new.add_argument('-u', '--with-ui', action='store_true',
                     help='add the web page (index.html.tmpl, style.css, '
                          'zerocloud.js)')
    new.add_argument('-t', '--template', choices=('python',),
                     default='python', help='project type (default: python)')

    bundle_cmd = command('bundle', 'build <meta.name>.zapp from the project '
                         'around the current directory')
    bundle_cmd.add_argument('-r', '--refresh-deps', action='store_true',
                            help='install the dependencies afresh')

    deploy_cmd = command('deploy', 'store a zapp, its job and its page in '
                         'Swift')
    deploy_cmd.add_argument('target', help='container[/folder]')
    deploy_cmd.add_argument('zapp', help='the .zapp file')
    deploy_cmd.add_argument('-f', '--force', action='store_true',
                            help='deploy into a container that is not empty')
    deploy_cmd.add_argument('--execute', action='store_true',
                            help='run the deployed job afterwards')
    deploy_cmd.add_argument('-s', '--summary', action='store_true',
                            help='with --execute: print the per-node table')
    deploy_cmd.add_argument('--no-ui-auth', action='store_true',
                            help='accepted for zpm 0.3 scripts: pages never '
                                 'hold credentials now')
    auth.add_auth_arguments(deploy_cmd)

    execute_cmd = command('execute', 'run a zapp, or a deployed job, and '
                          'print its output')
    execute_cmd.add_argument('zapp', nargs='?',
                             help='a local .zapp file (ignored with '
                                  '--container, as zpm 0.3 did)')
    execute_cmd.add_argument('--container', metavar='TARGET',
                             help='run the job deployed to '
                                  'container[/folder]')
    execute_cmd.add_argument('-s', '--summary', action='store_true',
                             help='print the per-node table')
    auth.add_auth_arguments(execute_cmd)

    auth_cmd = command('auth', 'print an auth token and the storage URL')
    auth.add_auth_arguments(auth_cmd)

    command('version', 'print the version')
    help_cmd = command('help', 'help on zpm or one of its commands')
    help_cmd.add_argument('topic', nargs='?', metavar='COMMAND')
    parser.set_defaults(subparsers=commands)
    return parser


def cmd_new(args: argparse.Namespace) -> int:
    for path in project.create_project(args.directory, args.with_ui):
        print("Created '%s'" % path)
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    root = project.find_root(os.getcwd())
    path = bundle.build(root, args.refresh_deps)
    print('created %s' % os.path.relpath(path))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    conn = auth.connect(args)
    url = deploy.deploy(conn, args.target, args.zapp, args.force)
    print('app deployed to\n  %s' % url)
    if not args.execute:
        return 0
    sys.stdout.flush()
    return execute.show_answer(execute.post_stored(conn, args.target),
                               args.summary)


def cmd_execute(args: argparse.Namespace) -> int:
    if args.zapp is None and args.container is None:
        raise ProjectError('name a .zapp file or --container TARGET')
    conn = auth.connect(args)
    if args.container is not None:
        # zpm 0.3 required the positional even then; its scripts pass one.
        if args.zapp is not None:
            LOG.info('running the job deployed to %s; %s is not read',
                     args.container, args.zapp)
        resp = execute.post_stored(conn, args.container)
    else:
        resp = execute.post_zapp(conn, args.zapp)
    return execute.show_answer(resp, args.summary)


def cmd_auth(args: argparse.Namespace) -> int:
    conn = auth.connect(args)
    print('Auth token: %s' % conn.token)
    print('Storage URL: %s' % conn.url)
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print('zpm version %s' % version())
    return 0


def cmd_help(args: argparse.Namespace, parser: argparse.ArgumentParser
             ) -> int:
    if args.topic is None:
        parser.print_help()
        return 0
    sub = args.subparsers.choices.get(args.topic)
    if sub is None:
        print('no such command: %s' % args.topic, file=sys.stderr)
        parser.print_help(sys.stderr)
        return 2
    sub.print_help()
    return 0


COMMANDS = {'new': cmd_new, 'bundle': cmd_bundle, 'deploy': cmd_deploy,
            'execute': cmd_execute, 'auth': cmd_auth, 'version': cmd_version}


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format='zpm: %(levelname)s: %(message)s')
    if args.log_level != 'debug':
        # swiftclient logs refused requests at INFO and above; zpm reports
        # them itself.
        logging.getLogger('swiftclient').setLevel(logging.CRITICAL)
    try:
        if args.command == 'help':
            return cmd_help(args, parser)
        return COMMANDS[args.command](args)
    except (ProjectError, CredentialsError) as err:
        print('zpm: %s' % err, file=sys.stderr)
    except ClientException as err:
        print('zpm: Swift refused: %s' % err, file=sys.stderr)
    except (requests.RequestException, OSError) as err:
        print('zpm: %s' % err, file=sys.stderr)
    return 1
