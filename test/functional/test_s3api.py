"""S3 clients on the all-in-one: Swift's s3api, signed with tempauth users.

boto3 (SigV4, path-style addressing), with ``test:tester`` as the access
key and ``testing`` as the secret, as the README shows:

- a bucket is a container and an object an object: what boto3 stores, a
  Swift client reads byte for byte, and a ZeroCloud job reads it as
  ``/dev/input``; what Swift stores, boto3 lists and reads;
- a wrong secret is ``403 SignatureDoesNotMatch``; a user of the account
  without rights on the bucket gets ``403 AccessDenied``; buckets live in
  their account, so another account's user finds no such bucket;
- ``/info`` lists ``s3api``;
- only S3-signed requests reach s3api: a Swift request that also carries
  ``Authorization: Bearer …`` is answered by Swift, and a job so sent
  runs.
"""

import hashlib
import random

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from .helpers import (
    REQUEST_TIMEOUT, Account, python_node, store_zapp, unique)

READ_INPUT = '''import hashlib
print(hashlib.md5(open('/dev/input', 'rb').read()).hexdigest())
'''


def s3_client(cluster, access_key: str = 'test:tester',
              secret: str = 'testing', signature_version: str = 's3v4'):
    return boto3.client(
        's3', endpoint_url=cluster.proxy_url, region_name='us-east-1',
        aws_access_key_id=access_key, aws_secret_access_key=secret,
        config=Config(signature_version=signature_version,
                      s3={'addressing_style': 'path'},
                      retries={'max_attempts': 1}))


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


def test_what_boto3_stores_swift_and_a_job_read(cluster, account):
    s3 = s3_client(cluster)
    bucket = unique('s3')
    s3.create_bucket(Bucket=bucket)
    data = random.Random(3).randbytes(300000)
    s3.put_object(Bucket=bucket, Key='dir/data.bin', Body=data)
    assert s3.get_object(Bucket=bucket, Key='dir/data.bin')['Body'].read() \
        == data
    listed = s3.list_objects_v2(Bucket=bucket)['Contents']
    assert [(o['Key'], o['Size']) for o in listed] == [('dir/data.bin',
                                                        len(data))]
    swift = requests.get('%s/%s/dir/data.bin' % (account.url, bucket),
                         headers=account.headers(), timeout=REQUEST_TIMEOUT)
    assert swift.status_code == 200 and swift.content == data
    image = store_zapp(account, bucket, {'main.py': READ_INPUT})
    resp = account.post_job([python_node('reader', image, devices=[
        {'name': 'stdout'},
        {'name': 'input', 'path': 'swift://~/%s/dir/data.bin' % bucket}])])
    assert resp.status_code == 200, resp.text
    assert resp.text == hashlib.md5(data).hexdigest() + '\n'


def test_what_swift_stores_boto3_reads(cluster, account):
    container = unique('swift')
    account.put_container(container)
    account.put_object(container, 'note.txt', b'stored by swift\n',
                       'text/plain')
    got = s3_client(cluster).get_object(Bucket=container, Key='note.txt')
    assert got['ContentType'] == 'text/plain'
    assert got['Body'].read() == b'stored by swift\n'


def test_a_wrong_secret_or_another_account_is_refused(cluster):
    bucket = unique('s3-private')
    s3_client(cluster).create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as wrong:
        s3_client(cluster, secret='not-testing').list_buckets()
    assert wrong.value.response['Error']['Code'] == 'SignatureDoesNotMatch'
    assert wrong.value.response['ResponseMetadata']['HTTPStatusCode'] == 403
    with pytest.raises(ClientError) as unprivileged:
        s3_client(cluster, 'test:tester3', 'testing3').list_objects_v2(
            Bucket=bucket)
    assert unprivileged.value.response['Error']['Code'] == 'AccessDenied'
    # Buckets live in their account: another account has none of that name.
    with pytest.raises(ClientError) as other:
        s3_client(cluster, 'test2:tester2', 'testing2').list_objects_v2(
            Bucket=bucket)
    assert other.value.response['Error']['Code'] == 'NoSuchBucket'


def test_info_lists_s3api(cluster):
    info = requests.get(cluster.proxy_url + '/info',
                        timeout=REQUEST_TIMEOUT).json()
    assert 's3api' in info
    assert info['s3api']['select_object_content'] is True
    assert info['s3api']['select_native_scanner'] is True


def test_a_swift_request_with_another_authorization_is_swifts(account):
    headers = account.headers(Authorization='Bearer ' + account.token)
    listing = requests.get(account.url, headers=headers,
                           timeout=REQUEST_TIMEOUT)
    assert listing.status_code in (200, 204), listing.text
    resp = requests.post(
        account.url, data='#!file://python:python\nprint("ran")\n',
        timeout=REQUEST_TIMEOUT,
        headers=dict(headers, **{'X-Zerovm-Execute': '1.0',
                                 'Content-Type': 'application/python'}))
    assert resp.status_code == 200, resp.text
    assert resp.text == 'ran\n'
