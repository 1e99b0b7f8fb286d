"""The ``exit`` wall clock: faster engines, a watchdog that ends the process.

Runs that time out in ``exit`` mode end their process, so they run in a
small driver subprocess; runs that finish are checked in-process.
"""

import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.limits import TIMEOUT_EXIT_STATUS, Alarm
from zerocloud.runtime.report import parse_report
from zerocloud.runtime.session import Runtime

from test.unit.runtime.helpers import output, write_manifest

DRIVER = '''
import json, sys, time
from zerocloud.runtime.session import Runtime

def announce(result):
    print(json.dumps({'exit_status': result.exit_status,
                      'report': result.report.render(), 'fuel': result.fuel,
                      'elapsed': time.monotonic() - started}))

runtime = Runtime(sys.argv[2], wall_clock='exit', on_timeout_exit=announce)
started = time.monotonic()
result = runtime.run(sys.argv[1])
print('returned', result.report.status)
'''

LAST_WORDS_WHILE_RETURNING = '''
import threading, time
from zerocloud.runtime.limits import ExitWatchdog

fired = threading.Event()

def last_words():
    print('timeout', flush=True)
    fired.set()
    time.sleep(0.3)  # the guest returns meanwhile

with ExitWatchdog(0.1, last_words):
    fired.wait()     # the deadline fired: return now, during last_words
print('returned')
'''


def test_timeout_answers_through_the_callback_and_exits(
        wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['traps'],
                              args=['traps', 'l'], timeout=1)
    proc = subprocess.run(
        [sys.executable, '-c', DRIVER, manifest, str(tmp_path / 'modules')],
        capture_output=True, timeout=30)
    assert proc.returncode == TIMEOUT_EXIT_STATUS == errno.EINTR, proc.stderr
    [line] = proc.stdout.splitlines()  # never 'returned'
    announced = json.loads(line)
    # The guest loops for ever: only the deadline ended it, never early.
    assert announced['elapsed'] >= 1.0
    assert (announced['exit_status'], announced['fuel']) == (errno.EINTR, None)
    report = parse_report(announced['report'])
    assert report.status == 'session timeout'
    assert (report.validation, report.retcode, report.etags) == (0, 0, [])
    assert report.accounting[0] + report.accounting[1] > 0  # it spun


def test_guest_returning_while_the_deadline_fires_is_not_reported():
    proc = subprocess.run([sys.executable, '-c', LAST_WORDS_WHILE_RETURNING],
                          capture_output=True, timeout=30)
    assert proc.returncode == TIMEOUT_EXIT_STATUS, proc.stderr
    assert proc.stdout == b'timeout\n'


def test_finished_run_returns_normally_and_cancels_the_watchdog(
        wat_programs, tmp_path):
    announced = []
    runtime = Runtime(str(tmp_path / 'modules'), wall_clock='exit',
                      on_timeout_exit=announced.append)
    manifest = write_manifest(tmp_path, wat_programs['hello'], timeout=1,
                              etag_stdout=1)
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (0, 'ok')
    assert output(tmp_path) == b'hello\n'
    assert result.report.etag_of('/dev/stdout') is not None
    threads = threading.active_count()
    assert runtime.run(manifest).report.status == 'ok'
    # The second run's deadline is on the same thread as the first's.
    assert threading.active_count() == threads
    # Past both deadlines: disarmed, they never fire (a watchdog that
    # fired would have announced, then ended this process).
    time.sleep(1.5)
    assert announced == []
    with open(wat_programs['hello'], 'rb') as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    assert os.listdir(tmp_path / 'modules' / 'user') == [os.path.basename(
        runtime.cache.cache_path(EngineSettings(epoch=False), digest,
                                 user=True))]


def test_exit_mode_has_its_own_engine_and_cache_key():
    epoch, no_epoch = Runtime().settings(), Runtime(
        wall_clock='exit').settings()
    assert (epoch.epoch, no_epoch.epoch) == (True, False)
    assert 'epoch=1' in epoch.cache_key()
    assert 'epoch=0' in no_epoch.cache_key()
    assert no_epoch == EngineSettings(epoch=False)


def test_unknown_wall_clock_is_refused():
    with pytest.raises(ValueError, match="wall clock must be 'epoch' or "
                       "'exit', got 'fast'"):
        Runtime(wall_clock='fast')


def test_an_alarm_fires_once_armed_and_never_once_disarmed():
    alarm = Alarm()
    fired = threading.Event()
    alarm.arm(0.01, fired.set)
    assert fired.wait(10)
    late = []
    alarm.arm(0.2, lambda: late.append('fired'))
    alarm.disarm()
    again = threading.Event()
    alarm.arm(0.3, again.set)   # the same thread serves the next deadline
    assert again.wait(10)
    assert late == []
