"""Swift's ``s3api``, given only the requests S3 clients sign.

``s3api`` takes every request that carries an ``Authorization`` header for
an S3 request.  A Swift client that sends one next to its ``X-Auth-Token``
(``Authorization: Bearer …``, as some HTTP libraries and gateways add)
then gets an S3 error (``403 AccessDenied``, "AWS authentication requires
a valid Date or x-amz-date header") instead of its answer, and a job never
runs.  This filter builds ``s3api`` with the options of its own section and
hands it only what S3 signs:

* an ``Authorization`` header of the form ``AWS <key>:<signature>``
  (signature version 2) or ``AWS4-HMAC-SHA256 …`` (version 4);
* a presigned URL: ``X-Amz-Credential`` (v4) or ``AWSAccessKeyId`` (v2) in
  the query string.

Every other request goes on down the pipeline untouched, exactly as
``s3api`` itself lets through a request with no signature at all.  Use it
in ``s3api``'s place, right before the auth middleware::

    [filter:s3api]
    use = egg:zerocloud#s3api
    # every option of Swift's [filter:s3api] applies

A tempauth user is then an S3 access key (``test:tester``) and its password
the secret (``testing``).  ``/info`` lists ``s3api`` as usual, with
``select_object_content: true``: unlike plain ``s3api``, S3 Select works
(``POST /bucket/key?select&select-type=2``, see
:mod:`zerocloud.proxy.s3select`).
"""

from typing import Callable, Dict, Iterable
from urllib.parse import parse_qs

from swift.common.middleware.s3api import s3request
from swift.common.middleware.s3api.s3api import (
    ListingEtagMiddleware, S3ApiMiddleware,
    filter_factory as s3api_filter_factory)
from swift.common.registry import register_swift_info

from zerocloud.proxy.s3select import SelectObjectContent, is_select
from zerocloud.proxy import selectscan

#: ``Authorization`` prefixes of S3's signatures (v2, v4).
SIGNED_PREFIXES = ('AWS ', 'AWS4-HMAC-SHA256')
#: S3 Select's query parameters, which S3's version 2 signature covers
#: (as botocore signs them) but s3api's list of sub-resources lacks.
SELECT_SUB_RESOURCES = ('select', 'select-type')
#: Query parameters of S3's presigned URLs (v4, v2).
PRESIGNED_PARAMS = ('X-Amz-Credential', 'AWSAccessKeyId')

WsgiApp = Callable[[Dict, Callable], Iterable[bytes]]


def signed_for_s3(env: Dict) -> bool:
    """Does the request carry an S3 signature (header or presigned URL)?"""
    if env.get('HTTP_AUTHORIZATION', '').startswith(SIGNED_PREFIXES):
        return True
    query = parse_qs(env.get('QUERY_STRING', ''), keep_blank_values=True)
    return any(param in query for param in PRESIGNED_PARAMS)


class ZeroCloudS3Api(S3ApiMiddleware):
    """Swift's ``s3api``, plus ``SelectObjectContent`` (which ``s3api``
    answers ``501``) run as a job (:mod:`zerocloud.proxy.s3select`).  The
    request is parsed and its signature format checked by ``s3api``
    first, and ``s3api`` turns every error into S3's XML answer."""

    def handle_request(self, req):
        if is_select(req):
            req.set_acl_handler(req.controller.acl_handler(req, self.logger))
            return SelectObjectContent(self.app, req, self.logger).respond()
        return super().handle_request(req)


class S3Gate:
    """Sends S3-signed requests to ``s3``, the others to ``app``."""

    def __init__(self, app: WsgiApp, s3: WsgiApp):
        self.app = app
        self.s3 = s3

    def __call__(self, env, start_response):
        if signed_for_s3(env):
            return self.s3(env, start_response)
        return self.app(env, start_response)


def filter_factory(global_conf, **local_conf):
    # Swift's factory registers /info's entry and the secret headers.
    s3api_filter_factory(global_conf, **local_conf)
    scanner_built = selectscan.scanner() is not None
    register_swift_info('s3api', select_object_content=True,
                        select_native_scanner=scanner_built)
    for name in SELECT_SUB_RESOURCES:
        # Else a select signed with version 2 never matches its signature.
        if name not in s3request.ALLOWED_SUB_RESOURCES:
            s3request.ALLOWED_SUB_RESOURCES.append(name)
    conf = dict(global_conf, **local_conf)

    def gate(app):
        api = ZeroCloudS3Api(ListingEtagMiddleware(app), conf)
        if not scanner_built:
            api.logger.warning(
                'zerocloud: S3 Select native scanner %s is not built, or '
                'is older than its source (make native): every select runs '
                'in the Python engine',
                selectscan.SCANNER_PATH)
        return S3Gate(app, api)
    return gate
