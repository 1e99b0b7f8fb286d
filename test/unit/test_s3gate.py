"""Only S3-signed requests reach s3api (zerocloud.proxy.s3gate)."""

import pytest

from zerocloud.proxy.s3gate import S3Gate, signed_for_s3


@pytest.mark.parametrize('env', [
    {'HTTP_AUTHORIZATION': 'AWS test:tester:c2lnbmF0dXJl'},
    {'HTTP_AUTHORIZATION': 'AWS4-HMAC-SHA256 Credential=test:tester/2026'
                           '1207/us-east-1/s3/aws4_request, SignedHeaders='
                           'host, Signature=abc'},
    {'QUERY_STRING': 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=k'},
    {'QUERY_STRING': 'AWSAccessKeyId=test%3Atester&Expires=1&Signature=x'},
])
def test_s3_signatures_go_to_s3api(env):
    assert signed_for_s3(env)


@pytest.mark.parametrize('env', [
    {},
    {'HTTP_AUTHORIZATION': 'Bearer AUTH_tk0123'},
    {'HTTP_AUTHORIZATION': 'Basic dGVzdDp0ZXN0aW5n'},
    {'HTTP_AUTHORIZATION': 'AWSx'},
    {'QUERY_STRING': 'format=json&prefix=X-Amz-Credential'},
])
def test_anything_else_skips_s3api(env):
    assert not signed_for_s3(env)


def test_the_gate_calls_one_of_the_two():
    calls = []
    gate = S3Gate(lambda env, sr: calls.append('swift') or [b''],
                  lambda env, sr: calls.append('s3') or [b''])
    gate({'HTTP_AUTHORIZATION': 'Bearer x'}, None)
    gate({'HTTP_AUTHORIZATION': 'AWS a:b'}, None)
    assert calls == ['swift', 's3']
