"""The worker's request handling and protocol pipes (no wasm needed)."""

import json
import os
import subprocess
import sys

from zerocloud.runtime import worker
from zerocloud.cipher import CipherKey
from zerocloud.runtime.report import Report, parse_report

from test.unit.runtime_pool.conftest import FAKE_WORKER


class RecordingRuntime:
    def __init__(self):
        self.calls = []

    def run(self, manifest_path, *, skip_validation=False,
            validate_only=False, ciphers=None, tees=None):
        self.calls.append(('run', manifest_path, skip_validation,
                           validate_only, ciphers, tees))

        class Result:
            exit_status = 0
            report = Report(validation=0, retcode=3,
                            etags=[('/dev/stdout', 'a' * 32)])
            fuel = None
        return Result()

    def warm(self, program_path, member=None, fuel=False,
             deterministic=False):
        self.calls.append(('warm', program_path, member, fuel,
                           deterministic))
        if program_path == 'broken':
            raise ValueError('not a wasm module')


def test_run_request_answers_rendered_report():
    runtime = RecordingRuntime()
    reply = worker.handle(runtime, worker.encode_message(
        {'manifest': '/m', 'skip_validation': True}))
    assert runtime.calls == [('run', '/m', True, False, {}, {})]
    assert reply['exit_status'] == 0 and reply['fuel'] is None
    report = parse_report(reply['report'])
    assert report.retcode == 3
    assert report.etags == [('/dev/stdout', 'a' * 32)]


def test_run_request_carries_cipher_keys():
    runtime = RecordingRuntime()
    key = CipherKey(b'k' * 32, b'i' * 16)
    worker.handle(runtime, worker.encode_message(
        {'manifest': '/m', 'ciphers': {'/dev/input': key.to_json(),
                                       '/dev/output': key.to_json()},
         'tees': {'/dev/output': '/ram/tee'}}))
    assert runtime.calls == [('run', '/m', False, False,
                              {'/dev/input': key, '/dev/output': key},
                              {'/dev/output': '/ram/tee'})]


def test_warm_request_and_its_failure():
    runtime = RecordingRuntime()
    assert worker.handle(runtime, b'{"warm": "/p.wasm", "member": "python"}'
                         ) == {'warmed': True}
    assert worker.handle(runtime, b'{"warm": "/p.wasm", "fuel": true, '
                         b'"deterministic": true}') == {'warmed': True}
    assert runtime.calls == [('warm', '/p.wasm', 'python', False, False),
                             ('warm', '/p.wasm', None, True, True)]
    reply = worker.handle(runtime, b'{"warm": "broken"}')
    assert reply == {'error': 'ValueError: not a wasm module'}


def test_bad_requests_get_error_replies():
    runtime = RecordingRuntime()
    cases = {
        b'not json': 'not a JSON line',
        b'[1, 2]': 'must be a JSON object',
        b'{}': "'manifest' must be a non-empty string",
        b'{"manifest": 5}': "'manifest' must be a non-empty string",
        b'{"manifest": "/m", "validate_only": "yes"}':
            "'validate_only' must be true or false",
        b'{"warm": ""}': "'warm' must be a non-empty string",
        b'{"manifest": "/m", "ciphers": []}': "'ciphers' must be an object",
        b'{"manifest": "/m", "ciphers": {"/dev/input": {"key": "AA=="}}}':
            'bad cipher key',
        b'{"manifest": "/m", "tees": {"/dev/output": ""}}':
            "'tees' must map aliases to FIFO paths",
        b'{"manifest": "/m", "tees": ["/dev/output"]}':
            "'tees' must map aliases to FIFO paths",
    }
    for line, message in cases.items():
        reply = worker.handle(runtime, line)
        assert list(reply) == ['error'], line
        assert message in reply['error'], line
    assert runtime.calls == []


def test_serve_answers_each_line_until_eof(tmp_path):
    requests = tmp_path / 'requests'
    requests.write_bytes(b'{"manifest": "/a"}\n\n{"bad"\n{"manifest": "/b"}\n')
    replies = tmp_path / 'replies'
    runtime = RecordingRuntime()
    with open(requests, 'rb') as inp, open(replies, 'wb') as out:
        worker.serve(runtime, inp, out)
    lines = replies.read_bytes().splitlines()
    assert len(lines) == 3
    assert 'error' in json.loads(lines[1])
    assert [c[1] for c in runtime.calls] == ['/a', '/b']


def test_stray_output_cannot_corrupt_the_protocol(tmp_path):
    manifest = tmp_path / 'cmd'
    manifest.write_text('print')
    proc = subprocess.run(
        [sys.executable, FAKE_WORKER, '-m', worker.MODULE,
         '--parent-pid', str(os.getpid())],
        input=worker.encode_message({'manifest': str(manifest)}),
        capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    assert 'ready' in json.loads(lines[0])
    assert parse_report(json.loads(lines[1])['report']).ok
    assert b'stray print' in proc.stderr
    assert b'stray fd write' in proc.stderr


def test_worker_exits_at_once_when_parent_is_not_the_expected_one():
    proc = subprocess.run(
        [sys.executable, FAKE_WORKER, '-m', worker.MODULE,
         '--parent-pid', '1'], stdin=subprocess.PIPE,
        capture_output=True, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout == b''


def test_runtime_that_cannot_load_is_reported_on_the_first_line():
    code = ('import sys\nfrom zerocloud.runtime import worker\n'
            'def broken(*args):\n    raise ImportError("no wasmtime")\n'
            'sys.exit(worker.main([], runtime_factory=broken))\n')
    proc = subprocess.run([sys.executable, '-c', code], input=b'',
                          capture_output=True, timeout=30)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {
        'error': 'cannot load the runtime: ImportError: no wasmtime'}


def test_exit_mode_answers_the_overrun_session_then_exits(tmp_path):
    manifest = tmp_path / 'cmd'
    manifest.write_text('overrun')
    requests = worker.encode_message({'manifest': str(manifest)}) * 2
    proc = subprocess.run(
        [sys.executable, FAKE_WORKER, '-m', worker.MODULE,
         '--wall-clock', 'exit'],
        input=requests, capture_output=True, timeout=30)
    assert proc.returncode == 4, proc.stderr
    ready, reply = [json.loads(line) for line in proc.stdout.splitlines()]
    assert 'ready' in ready
    assert reply['exiting'] is True
    assert (reply['exit_status'], reply['fuel']) == (4, None)
    assert parse_report(reply['report']).status == 'session timeout'


def test_unknown_wall_clock_is_refused():
    proc = subprocess.run(
        [sys.executable, '-m', worker.MODULE, '--wall-clock', 'fast'],
        input=b'', capture_output=True, timeout=30)
    assert proc.returncode == 2
    assert b"invalid choice: 'fast'" in proc.stderr
    assert proc.stdout == b''
