"""S3 Select (``SelectObjectContent``) for ZeroCloud.

This package runs in two places:

* on the proxy (``zerocloud.proxy.s3select``): the request's XML is parsed
  (``request``), its SQL checked (``sql``) so that bad input is a ``400``
  before any sandbox starts, and the answer's event stream checked and
  finished (``eventstream``);
* inside the sandbox, next to the object: ``zerocloud.runtime.snapshot``
  copies the package into the Python system image as ``_zerocloud_select``
  and ``python -m _zerocloud_select`` (``__main__``) reads the object,
  runs the query and writes the event stream on stdout.

So it uses the standard library only, and imports its own modules
relatively, never ``zerocloud``.
"""
