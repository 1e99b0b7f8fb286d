"""Running ``zpm`` against the test cluster and making projects for it."""

import fcntl
import http.server
import json
import os
import struct
import subprocess
import termios
import threading
from typing import Dict, Optional

import yaml

#: Seconds any zpm command may take (a job included).
ZPM_TIMEOUT = 180


def run_zpm(env: Dict[str, str], *args: str, cwd: Optional[str] = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run(['zpm'] + list(args), env=env, cwd=cwd,
                          capture_output=True, text=True,
                          timeout=ZPM_TIMEOUT)


def run_zpm_on_tty(env: Dict[str, str], *args: str, cwd: str
                   ) -> subprocess.CompletedProcess:
    """zpm with stderr on a pseudo-terminal (where progress bars show);
    ``stderr`` is what the terminal received."""
    master, slave = os.openpty()
    # A terminal has a size; tqdm draws nothing on a zero-column one.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0, 0))
    seen = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the terminal's last writer is gone
                return
            if not data:
                return
            seen.append(data)
    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = subprocess.run(['zpm'] + list(args), env=env, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=slave,
                              timeout=ZPM_TIMEOUT)
    finally:
        os.close(slave)
        reader.join(30)
        os.close(master)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(),
        b''.join(seen).decode('utf-8', 'replace'))


def new_project(env: Dict[str, str], where: str, main_py: str,
                with_ui: bool = False, **changes) -> str:
    """``zpm new`` at ``where`` with this main.py; ``changes`` update
    zapp.yaml's top level (``group`` updates the one group)."""
    flags = ['--with-ui'] if with_ui else []
    done = run_zpm(env, 'new', where, *flags)
    assert done.returncode == 0, done.stderr
    with open(os.path.join(where, 'main.py'), 'w') as handle:
        handle.write(main_py)
    path = os.path.join(where, 'zapp.yaml')
    with open(path) as handle:
        zapp = yaml.safe_load(handle)
    zapp['execution']['groups'][0].update(changes.pop('group', {}))
    zapp.update(changes)
    with open(path, 'w') as handle:
        yaml.safe_dump(zapp, handle)
    return where


def bundle(env: Dict[str, str], root: str) -> str:
    """``zpm bundle`` in ``root``; the zapp's path."""
    done = run_zpm(env, 'bundle', cwd=root)
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip().split()[-1]
    return os.path.join(root, name)


class FakeKeystone:
    """A Keystone stand-in on 127.0.0.1 for v2 (``/v2.0/tokens``) and v3
    (``/v3/auth/tokens``): it records each request body and answers with
    ``token`` and a catalog whose object-store is ``storage_url``, so a
    client it authenticated talks to the real cluster."""

    def __init__(self, token: str, storage_url: str):
        self.token = token
        self.storage_url = storage_url
        self.requests: list = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get('Content-Length', 0))
                fake.requests.append((self.path, json.loads(
                    self.rfile.read(length))))
                if self.path == '/v3/auth/tokens':
                    self._answer(201, fake.v3_body(),
                                 {'X-Subject-Token': fake.token})
                elif self.path == '/v2.0/tokens':
                    self._answer(200, fake.v2_body(), {})
                else:
                    self._answer(404, {'error': 'not here'}, {})

            def _answer(self, status: int, body: dict,
                        headers: Dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in dict(headers, **{
                        'Content-Type': 'application/json',
                        'Content-Length': str(len(data))}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.thread = threading.Thread(target=self.server.serve_forever)

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.server.server_address[1]

    def v3_body(self) -> dict:
        return {'token': {
            'methods': ['password'], 'expires_at': '2099-01-01T00:00:00Z',
            'issued_at': '2024-01-01T00:00:00Z',
            'user': {'id': 'u1', 'name': 'demo',
                     'domain': {'id': 'default', 'name': 'Default'}},
            'project': {'id': 'p1', 'name': 'demo-project',
                        'domain': {'id': 'default', 'name': 'Default'}},
            'roles': [{'id': 'r1', 'name': 'member'}],
            'catalog': [{'type': 'object-store', 'name': 'swift', 'id': 's1',
                         'endpoints': [{'id': 'e1', 'interface': 'public',
                                        'region': 'RegionOne',
                                        'region_id': 'RegionOne',
                                        'url': self.storage_url}]}]}}

    def v2_body(self) -> dict:
        return {'access': {
            'token': {'id': self.token, 'expires': '2099-01-01T00:00:00Z',
                      'tenant': {'id': 't1', 'name': 'demo-tenant'}},
            'user': {'id': 'u1', 'name': 'demo', 'roles': []},
            'serviceCatalog': [{'type': 'object-store', 'name': 'swift',
                                'endpoints': [{
                                    'region': 'RegionOne',
                                    'publicURL': self.storage_url}]}]}}

    def __enter__(self) -> 'FakeKeystone':
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
