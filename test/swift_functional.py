"""Swift's own functional suite against the all-in-one cluster.

``make swift-functional`` (``python test/swift_functional.py``): plain Swift
must never be harmed by ZeroCloud's filters.  This takes Swift's test tree
of the installed release (the sdist from PyPI carries ``test/``; kept in
``var/swift-<version>/``), starts the all-in-one launcher's cluster on free
ports in a temporary directory (tmpfs when usable), writes ``test.conf`` for
its tempauth users (their S3 keys too: ``s3api`` is in the pipeline), runs
Swift's ``test/functional`` with pytest, ``s3api`` included, and stops the
cluster.

Exit status 0 only when every failure (or error) is listed, with its
reason, in ``test/swift_functional_known_failures.txt``.  A listed test that
passes is reported (the list should shrink) but does not fail the run.
``--without-zerocloud`` runs the same cluster with ``job_chain`` and
``proxy_query`` taken out of the proxy pipeline, to compare; both runs write
every test's outcome to ``var/swift-functional/<mode>.json``.
"""

import argparse
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from typing import Dict

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from zerocloud import warnfilter  # noqa: E402

warnfilter.hide_third_party_deprecations()

from test.functional.helpers import configure, fast_tmp_dir  # noqa: E402
from zerocloud.saio import (  # noqa: E402
    AUTH_USERS, PROXY_PIPELINE, RESELLER_PREFIXES, Cluster, LaunchError)

PROG = 'swift-functional'
KNOWN_FAILURES = os.path.join(ROOT, 'test',
                              'swift_functional_known_failures.txt')
OUTPUT_DIR = os.path.join(ROOT, 'var', 'swift-functional')
ZEROCLOUD_FILTERS = ('job_chain', 'proxy_query')
#: Long enough for Swift's slowest test (large SLO manifests) on 2 busy cores.
PYTEST_TIMEOUT = 3600


def swift_tree() -> str:
    """Swift's source tree (with test/) of the installed release."""
    version = importlib.metadata.version('swift')
    tree = os.path.join(ROOT, 'var', 'swift-%s' % version)
    if os.path.isdir(os.path.join(tree, 'test', 'functional')):
        return tree
    with tempfile.TemporaryDirectory(dir=os.path.dirname(tree)) as tmp:
        done = subprocess.run(
            [sys.executable, '-m', 'pip', 'download', '-q',
             '--disable-pip-version-check', '--no-deps', '--no-binary',
             ':all:', 'swift==%s' % version, '-d', tmp],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit('%s: pip download swift==%s failed: %s' % (
                PROG, version, done.stderr.strip().splitlines()[-1:]))
        sdist = os.path.join(tmp, 'swift-%s.tar.gz' % version)
        prefix = 'swift-%s/' % version
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers()
                       if m.name.startswith(prefix + 'test/')]
            archive.extractall(tmp, members, filter='data')
        os.rename(os.path.join(tmp, prefix), tree)
    return tree


def write_test_conf(cluster: Cluster, path: str) -> None:
    """``[func_test]`` of Swift's test/sample.conf for our tempauth users."""
    first, second, third, service, reseller = (
        AUTH_USERS[name] for name in
        ('tester', 'tester2', 'tester3', 'tester5', 'admin'))
    options = {
        'auth_uri': cluster.auth_url,
        'account': first.account, 'username': first.user,
        'password': first.key,
        'account2': second.account, 'username2': second.user,
        'password2': second.key,
        'username3': third.user, 'password3': third.key,
        'account5': service.account, 'username5': service.user,
        'password5': service.key,
        'service_prefix': RESELLER_PREFIXES.split(', ')[1],
        'account6': reseller.account, 'username6': reseller.user,
        'password6': reseller.key,
        'collate': 'C',
        # s3api: a tempauth user is an access key, its password the secret.
        's3_storage_url': cluster.proxy_url + '/',
        's3_access_key': first.login, 's3_secret_key': first.key,
        's3_access_key2': second.login, 's3_secret_key2': second.key,
        's3_access_key3': third.login, 's3_secret_key3': third.key,
    }
    with open(path, 'w') as conf:
        conf.write('[func_test]\n' + ''.join(
            '%s = %s\n' % item for item in options.items()))


def create_accounts(cluster: Cluster) -> None:
    """Every test account exists, as in a cluster that has served users:
    Swift's tests assume it (until something is written to it, an
    autocreated account answers HEAD with a made-up 200, not 204)."""
    reseller_token = cluster.token('admin')  # may POST to any account
    for account in sorted({user.account for user in AUTH_USERS.values()}):
        url = '%s/v1/AUTH_%s' % (cluster.proxy_url, account)
        resp = requests.post(url, headers={'X-Auth-Token': reseller_token},
                             timeout=30)
        if resp.status_code != 204:
            raise LaunchError('POST %s answered %d' % (url, resp.status_code))


def outcomes(junit_xml: str) -> Dict[str, str]:
    """Test id -> passed, failed or skipped, from pytest's JUnit XML."""
    results = {}
    for case in ElementTree.parse(junit_xml).iter('testcase'):
        test_id = '%s::%s' % (case.get('classname'), case.get('name'))
        tags = {child.tag for child in case}
        if tags & {'failure', 'error'}:
            results[test_id] = 'failed'
        elif 'skipped' in tags:
            results[test_id] = 'skipped'
        else:
            results[test_id] = 'passed'
    return results


def known_failures() -> Dict[str, str]:
    """Test id -> why it fails upstream, from the known-failures file."""
    known = {}
    with open(KNOWN_FAILURES) as listing:
        for line in listing:
            line = line.strip()
            if line and not line.startswith('#'):
                test_id, _sep, reason = line.partition(' ')
                known[test_id] = reason.strip()
    return known


def without_zerocloud(cluster: Cluster) -> None:
    pipeline = ' '.join(name for name in PROXY_PIPELINE.split()
                        if name not in ZEROCLOUD_FILTERS)
    configure(cluster, 'proxy-server', 'pipeline:main', pipeline=pipeline)


def run(tree: str, with_zerocloud: bool, pytest_args: list[str]) -> int:
    mode = 'with-zerocloud' if with_zerocloud else 'without-zerocloud'
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='zerocloud-swift-functional-',
                               dir=fast_tmp_dir())
    cluster = Cluster(workdir, port=0)
    junit_xml = os.path.join(OUTPUT_DIR, '%s.xml' % mode)
    started = time.monotonic()
    try:
        cluster.prepare()
        if not with_zerocloud:
            without_zerocloud(cluster)
        cluster.start()
        create_accounts(cluster)
        test_conf = os.path.join(workdir, 'test.conf')
        write_test_conf(cluster, test_conf)
        env = dict(os.environ, SWIFT_TEST_CONFIG_FILE=test_conf)
        env.pop('PYTHONPATH', None)  # Swift's test package, not ours
        if os.path.exists(junit_xml):
            os.unlink(junit_xml)
        status = subprocess.run(
            # Swift's tree is the root (our setup.cfg is not its config):
            # test ids read test.functional.<module>.<class>::<test>.
            [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
             '--rootdir', tree, '-c', os.devnull,
             '--junitxml', junit_xml, *pytest_args, 'test/functional'],
            cwd=tree, env=env, timeout=PYTEST_TIMEOUT).returncode
    except LaunchError as err:
        print('%s: the cluster did not start: %s' % (PROG, err),
              file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if not os.path.exists(junit_xml):
        print('%s: pytest ended (status %d) without results' % (PROG, status),
              file=sys.stderr)
        return 1
    return report(mode, outcomes(junit_xml), time.monotonic() - started)


def report(mode: str, results: Dict[str, str], seconds: float) -> int:
    with open(os.path.join(OUTPUT_DIR, '%s.json' % mode), 'w') as out:
        json.dump(results, out, indent=1, sort_keys=True)
    counts = {outcome: sum(1 for value in results.values()
                           if value == outcome)
              for outcome in ('passed', 'failed', 'skipped')}
    known = known_failures()
    failed = sorted(test for test, value in results.items()
                    if value == 'failed')
    unexpected = [test for test in failed if test not in known]
    fixed = sorted(test for test in known if results.get(test) == 'passed')
    print('%s (%s): %d passed, %d failed (%d known), %d skipped in %.0f s'
          % (PROG, mode, counts['passed'], counts['failed'],
             len(failed) - len(unexpected), counts['skipped'], seconds))
    for test in fixed:
        print('%s: listed as a known failure but passed: %s' % (PROG, test))
    for test in unexpected:
        print('%s: FAILED (not a known failure): %s' % (PROG, test))
    return 1 if unexpected or not results else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--without-zerocloud', action='store_true',
                        help='leave job_chain and proxy_query out of the '
                        'proxy pipeline (to compare)')
    args, pytest_args = parser.parse_known_args()
    # A CI timeout's SIGTERM must still stop the cluster (finally clauses).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    return run(swift_tree(), not args.without_zerocloud, pytest_args)


if __name__ == '__main__':
    sys.exit(main())
