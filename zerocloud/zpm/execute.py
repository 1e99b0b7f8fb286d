"""``zpm execute``: run a zapp or a deployed job and show what it printed.

A local zapp is POSTed to the storage URL as it is (gzip tar); a deployed
one (``--container C[/folder]``) is named with ``X-Zerovm-Source`` so the
proxy reads ``C/boot/system.map`` itself, with the caller's rights, and
knows where the job came from.  The answer's body (the nodes' path-less
outputs: the program's stdout) goes to stdout; a refused job or a failed
node (status other than ``ok`` or a non-zero return code) makes the exit
status 1, with the reason and ``X-Nexe-Error`` on stderr.
"""

import os
import sys
from dataclasses import replace
from typing import Tuple
from urllib.parse import unquote, urlsplit

import requests
from swiftclient.client import Connection

from zerocloud.headers import STREAMING_STATUS
from zerocloud.zpm import progress, summary

EXECUTE_HEADERS = {'X-Zerovm-Execute': '1.0'}
CHUNK = 1 << 16
#: Seconds to wait for a job's answer (nodes may run for minutes).
JOB_TIMEOUT = 3600
#: Most of a refused job's body shown on stderr.
MAX_ERROR_TEXT = 4096


def account_of(storage_url: str) -> str:
    """``AUTH_x`` of ``http://host/v1/AUTH_x``."""
    return unquote(urlsplit(storage_url).path.rstrip('/').rsplit('/', 1)[-1])


def split_target(target: str) -> Tuple[str, str]:
    """(container, folder prefix ending in ``/`` or empty) of ``c[/f]``."""
    container, _, folder = target.strip('/').partition('/')
    folder = folder.strip('/')
    return container, folder + '/' if folder else ''


def _post(conn: Connection, data, headers: dict) -> requests.Response:
    return requests.post(conn.url, data=data, stream=True,
                         timeout=JOB_TIMEOUT,
                         headers=dict(headers, **EXECUTE_HEADERS,
                                      **{'X-Auth-Token': conn.token}))


def post_zapp(conn: Connection, path: str) -> requests.Response:
    """Run a local zapp file."""
    size = os.path.getsize(path)
    with open(path, 'rb') as handle:
        return _post(conn, progress.ProgressReader(handle, size, 'upload'),
                     {'Content-Type': 'application/x-gzip',
                      'Content-Length': str(size)})


def post_stored(conn: Connection, target: str) -> requests.Response:
    """Run the job deployed to ``target`` (``container[/folder]``)."""
    container, prefix = split_target(target)
    source = 'swift://%s/%s/%sboot/system.map' % (
        account_of(conn.url), container, prefix)
    return _post(conn, b'', {'X-Zerovm-Source': source})


def show_answer(resp: requests.Response, with_summary: bool) -> int:
    """Print a job's answer; the exit status it calls for.

    A streamed answer (``X-Nexe-Status: streaming``) tells how its node
    ended by how its body ends: cleanly, the node succeeded; cut short, it
    failed.
    """
    total, nodes = summary.node_summaries(resp.headers)
    error = resp.headers.get('X-Nexe-Error')
    streamed = resp.headers.get('X-Nexe-Status') == STREAMING_STATUS
    cut = False
    if resp.ok:
        length = resp.headers.get('Content-Length')
        try:
            for chunk in progress.counted(resp.iter_content(CHUNK),
                                          int(length) if length else None,
                                          'output'):
                sys.stdout.buffer.write(chunk)
        except requests.exceptions.ChunkedEncodingError:
            if not streamed:
                raise
            cut = True
            print('zpm: the answer was cut short: its node failed after '
                  'the answer started', file=sys.stderr)
        sys.stdout.buffer.flush()
        if streamed:
            nodes = [replace(node, status='failed' if cut else 'ok',
                             retcode='-' if cut else '0')
                     for node in nodes]
    else:
        print('zpm: the job failed: %d %s' % (resp.status_code, resp.reason),
              file=sys.stderr)
        text = resp.raw.read(MAX_ERROR_TEXT, decode_content=True).decode(
            'utf-8', 'replace').strip()
        if text and not error:
            print(text, file=sys.stderr)
    failed = [node for node in nodes if node.failed]
    for node in failed:
        print('zpm: node %s failed: status %s, retcode %s'
              % (node.name, node.status, node.retcode), file=sys.stderr)
    if error:
        print('X-Nexe-Error: %s' % unquote(error, errors='replace'),
              file=sys.stderr)
    if with_summary and nodes:
        print(summary.table(nodes, total))
    resp.close()
    return 0 if resp.ok and not failed else 1
