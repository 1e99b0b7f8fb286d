"""S3 Select next to the data versus downloading it:
``.venv/bin/python bench/s3select.py [--size-mb 1024] [--ranges 8]
[--repeat 3] [--no-encryption]``.

Starts its own all-in-one cluster (encryption at rest on), stores a CSV of
``--size-mb`` MiB (10 columns: an id, integers, floats and words) through
boto3, and runs, via boto3:

* ``filter``: ``SELECT _1, _5, _9 … WHERE CAST(_2 AS INT) < 10`` (about
  1 % of the rows, 3 columns);
* ``sum``: ``SELECT SUM(CAST(_3 AS FLOAT))``;
* ``filter ×N``: the filter split into ``--ranges`` ScanRanges sent in
  parallel (threads), their answers joined.

The baseline, measured in the same run, is what a client does without S3
Select: a GET of the whole object with boto3, then the same filter (or
sum) on the client with pyarrow's CSV reader and compute functions.
For each: seconds (the median of ``--repeat`` runs; the first run of a
select also compiles the native scanner on the server it lands on), the
ratio to the baseline (target ≤ 0.5), bytes that crossed the proxy to
the client, the scan throughput (MB/s of object per select node), and
the engine that answered (``X-Zerocloud-Select-Engine``: ``native`` or
``python``).  Every answer is checked against the baseline's result;
nothing is asserted about time.
"""

import argparse
import concurrent.futures
import io
import random
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import boto3
import pyarrow
import pyarrow.compute
import pyarrow.csv
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from common import (
    MIB, BenchError, add_encryption_flag, print_table, running_cluster)

BUCKET = 'bench-select'
KEY = 'table.csv'
FILTER_SQL = 'SELECT _1, _5, _9 FROM S3Object WHERE CAST(_2 AS INT) < 10'
SUM_SQL = 'SELECT SUM(CAST(_3 AS FLOAT)) FROM S3Object'
WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf']
TARGET = 0.5


def table_chunks(size: int, seed: int = 11):
    """At most ``size`` bytes of CSV (whole records), 10 columns, made as
    it is sent: 1 GiB stays within the all-in-one's ``zerovm_maxinput``."""
    rng = random.Random(seed)
    written = 0
    row = 0
    while written < size:
        lines = []
        for _ in range(2000):
            lines.append('%d,%d,%.3f,%d,%s,%.2f,%d,%s,%d,%s\n' % (
                row, rng.randrange(1000), rng.random() * 100,
                rng.randrange(10 ** 6), rng.choice(WORDS),
                rng.random(), rng.randrange(50), rng.choice(WORDS),
                rng.randrange(7), 'z' * rng.randrange(1, 20)))
            row += 1
        chunk = ''.join(lines).encode()
        if written + len(chunk) > size:
            chunk = chunk[:chunk.rfind(b'\n', 0, size - written) + 1]
            if not chunk:
                return
        written += len(chunk)
        yield chunk


@dataclass
class Measure:
    label: str
    seconds: float
    bytes_to_client: int
    scanned: int
    nodes: int
    answer: object
    error: Optional[str] = None
    engine: str = '-'


def s3_client(cluster):
    return boto3.client(
        's3', endpoint_url=cluster.proxy_url, region_name='us-east-1',
        aws_access_key_id='test:tester', aws_secret_access_key='testing',
        config=Config(s3={'addressing_style': 'path'},
                      read_timeout=3600, retries={'max_attempts': 1}))


def run_select(s3, sql: str, scan: Optional[Tuple[int, int]] = None
               ) -> Tuple[bytes, int, str]:
    """The records of one select, the bytes it scanned, and its engine."""
    extra = {'ScanRange': {'Start': scan[0], 'End': scan[1]}} if scan else {}
    resp = s3.select_object_content(
        Bucket=BUCKET, Key=KEY, ExpressionType='SQL', Expression=sql,
        InputSerialization={'CSV': {}}, OutputSerialization={'CSV': {}},
        **extra)
    records, scanned = [], 0
    for event in resp['Payload']:
        if 'Records' in event:
            records.append(event['Records']['Payload'])
        elif 'Stats' in event:
            scanned = event['Stats']['Details']['BytesScanned']
    engine = resp['ResponseMetadata']['HTTPHeaders'].get(
        'x-zerocloud-select-engine', '?')
    return b''.join(records), scanned, engine


def timed(label: str, action: Callable[[], Tuple[object, int, int, int]],
          repeat: int, engine: Callable[[], str] = lambda: '-') -> Measure:
    """``action`` run ``repeat`` times: the median time, the last answer."""
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        try:
            answer, to_client, scanned, nodes = action()
        except (ClientError, EventStreamError) as err:
            # A select that fails (over zerovm_timeout, say) is a row
            # saying so.
            return Measure(label, time.monotonic() - start, 0, 0, 0, None,
                           str(err))
        times.append(time.monotonic() - start)
    return Measure(label, statistics.median(times), to_client, scanned,
                   nodes, answer, engine=engine())


def baseline(s3, size: int, repeat: int) -> Tuple[Measure, Measure]:
    """GET the object, then filter (or sum) it with pyarrow."""
    def download() -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=KEY)['Body'].read()

    def read(data: bytes) -> pyarrow.Table:
        return pyarrow.csv.read_csv(
            io.BytesIO(data),
            read_options=pyarrow.csv.ReadOptions(
                autogenerate_column_names=True))

    def filtered() -> Tuple[object, int, int, int]:
        data = download()
        table = read(data)
        kept = table.filter(pyarrow.compute.less(table.column(1), 10))
        rows = list(zip(*(kept.column(i).to_pylist() for i in (0, 4, 8))))
        return rows, len(data), len(data), 0

    def summed() -> Tuple[object, int, int, int]:
        data = download()
        total = pyarrow.compute.sum(read(data).column(2)).as_py()
        return total, len(data), len(data), 0
    return (timed('GET + pyarrow filter', filtered, repeat),
            timed('GET + pyarrow sum', summed, repeat))


def selects(s3, size: int, ranges: int, repeat: int) -> List[Measure]:
    engines: List[str] = []

    def one(sql: str) -> Callable[[], Tuple[object, int, int, int]]:
        def action():
            records, scanned, engine = run_select(s3, sql)
            engines.append(engine)
            return records, len(records), scanned, 1
        return action

    def split() -> Tuple[object, int, int, int]:
        step = size // ranges
        bounds = [(i * step, size - 1 if i == ranges - 1
                   else (i + 1) * step - 1) for i in range(ranges)]
        with concurrent.futures.ThreadPoolExecutor(ranges) as pool:
            parts = list(pool.map(lambda b: run_select(s3, FILTER_SQL, b),
                                  bounds))
        engines.extend(engine for _, _, engine in parts)
        records = b''.join(part for part, _, _ in parts)
        return records, len(records), sum(s for _, s, _ in parts), ranges

    def used() -> str:
        seen = '/'.join(sorted(set(engines)))
        engines.clear()
        return seen
    return [timed('S3 Select filter', one(FILTER_SQL), repeat, used),
            timed('S3 Select sum', one(SUM_SQL), repeat, used),
            timed('S3 Select filter x%d ranges' % ranges, split, repeat,
                  used)]


def check(filter_base: Measure, sum_base: Measure,
          measures: List[Measure]) -> Dict[str, str]:
    """Each select's answer against the baseline's."""
    expected_rows = ['%s,%s,%s' % row for row in filter_base.answer]
    verdicts = {}
    for measure in measures:
        if measure.error:
            verdicts[measure.label] = 'failed: %s' % measure.error
            continue
        text = measure.answer.decode()
        if 'sum' in measure.label:
            ok = abs(float(text) - sum_base.answer) <= \
                1e-6 * abs(sum_base.answer)
        else:
            ok = text.splitlines() == expected_rows
        verdicts[measure.label] = 'right' if ok else 'WRONG'
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mb', type=int, default=1024,
                        help='size of the CSV object in MiB (default 1024)')
    parser.add_argument('--ranges', type=int, default=8,
                        help='ScanRanges of the split select (default 8)')
    parser.add_argument('--repeat', type=int, default=3,
                        help='runs of each measure, the median printed '
                        '(default 3)')
    add_encryption_flag(parser)
    args = parser.parse_args()
    try:
        with running_cluster(args.encryption) as cluster:
            s3 = s3_client(cluster)
            s3.create_bucket(Bucket=BUCKET)
            data = b''.join(table_chunks(args.size_mb * MIB))
            s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
            size = len(data)
            del data
            filter_base, sum_base = baseline(s3, size, args.repeat)
            measures = selects(s3, size, args.ranges, args.repeat)
    except BenchError as err:
        print('bench failed: %s' % err)
        return 1
    verdicts = check(filter_base, sum_base, measures)
    print('\n%.0f MiB CSV object, encryption at rest %s' % (
        size / MIB, 'on' if args.encryption else 'off'))
    rows = []
    for measure in [filter_base, sum_base] + measures:
        base = sum_base if 'sum' in measure.label else filter_base
        per_node = ('%.1f' % (measure.scanned / MIB / measure.seconds
                              * (1 if measure.nodes <= 1 else
                                 1.0 / measure.nodes))
                    if measure.nodes else '-')
        rows.append([measure.label, '%.2f' % measure.seconds,
                     '%.3f' % (measure.seconds / base.seconds),
                     '%.1f MB' % (measure.bytes_to_client / 1e6), per_node,
                     measure.engine, verdicts.get(measure.label, '-')])
    print_table(['run', 'seconds', 'vs baseline', 'to the client',
                 'scan MB/s per node', 'engine', 'answer'], rows)
    done = [m.seconds / filter_base.seconds for m in measures
            if 'filter' in m.label and not m.error]
    print('target (filter ≤ %.1f × baseline) met: %s'
          % (TARGET, 'yes' if done and min(done) <= TARGET else 'no'))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
