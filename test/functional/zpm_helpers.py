"""Running ``zpm`` against the test cluster and making projects for it."""

import fcntl
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
