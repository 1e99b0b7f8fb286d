"""The one error type of S3 Select: an S3 error code, its message, a status."""


class SelectError(Exception):
    """A request S3 Select refuses, with the error code S3 gives for it.

    ``code`` is S3's (``MalformedXML``, ``ParseUnexpectedToken``,
    ``CastFailed`` …); ``status`` is the HTTP status of the error answer
    when it comes before the event stream starts (S3 gives ``400`` for
    nearly all of them).  Once the stream has started the same code and
    message travel in an ``error`` event instead.
    """

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
