"""Tar framing of the streams between the proxy and the object servers.

ZeroCloud's two filters talk over plain HTTP with an uncompressed tar stream in
each direction (DESIGN.md §3.17):

* proxy → object server: ``POST /<dev>/<part>/<a>[/<c>[/<o>]]`` whose body is a
  tar stream of members ``sysmap`` (the node description, JSON), then the data
  the node needs that does not live on that server: ``image`` (the user image),
  ``boot`` (an executable fetched from Swift) and one member per remote input
  channel, named after its device; the largest input last, maybe read while
  the node runs (``STREAMED_LENGTH_HEADER``).  ``Content-Length`` is exact,
  except for a node whose upstream nodes run with it: its body is chunked
  and ends with their data (``EDGE_STREAM_HEADER``).
* object server → proxy: ``200`` with the ``X-Nexe-*`` headers and a tar stream
  with one member per returned output channel (named after its device).  Each
  member is preceded by a PAX extended header carrying the output's
  ``content_type``, its ``X-Object-Meta-*`` items and, for CGI outputs, the
  program's status and headers.

Streams end right after the last member's padding: there are no end-of-archive
blocks, so both sides always know exact lengths up front.  PAX keys of ours use
the ``ZEROCLOUD.`` prefix so they cannot clash with standard ones.  Stored
outputs come first and the immediate output (the node's part of the client's
response) last, so the proxy can write the objects and then stream the body.

The object server answers ``100 Continue`` only once it has checked the node
(local object present, device mounted, a sandbox slot free or a place in its
queue), before it reads the body and long before the run; a busy pool answers
``503`` with ``Retry-After`` instead, which is not a fault of that server.  A
node admitted to the queue waits at most ``QUEUE_WAIT`` seconds for a
sandbox, then gets the same busy answer; so a server that has the body
answers within the node's timeout plus ``ANSWER_SLACK`` seconds, and the proxy
waits no longer than that before it counts the server as failed.  A local
object whose bytes on disk are not what a client's GET returns (encrypted,
erasure-coded, a manifest, a symlink) is answered ``409`` with
``X-Zerocloud-Stream-Input``: the proxy then sends the input as a member (or,
for an encrypted object, the key to read it in place).

This module holds every name of that protocol (headers, member names, PAX
keys); both filters import them from here.
"""

import base64
import binascii
import json
import tarfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, Optional

BLOCK = 512
PAX_PREFIX = 'ZEROCLOUD.'

# -- request headers, proxy → object server
#: Marks an execution request (a client sends it to the proxy too).
EXECUTE_HEADER = 'X-Zerovm-Execute'
#: The job's id: names the node's workdir and seeds deterministic runs.
JOB_ID_HEADER = 'X-Zerocloud-Id'
#: Seconds the node may run (the object server's own limit wins if lower).
TIMEOUT_HEADER = 'X-Zerovm-Timeout'
#: ``GET`` when the node runs next to the object or container in the path.
ACCESS_HEADER = 'X-Zerovm-Access'
#: Asks for a deterministic run; the value pins the guest's clock.
DETERMINISTIC_HEADER = 'X-Zerovm-Deterministic'
#: ``<salt>:<ip>:<port>`` of the location a node shares with others; the
#: answer carries a proof under the same name.
COLOCATED_HEADER = 'X-Nexe-Colocated'
#: Whether an app snapshot ran the node (``zerocloud.runtime.appsnap``).
SNAPSHOT_HEADER = 'X-Nexe-Snapshot'
#: Sent only when the caller owns the container a node reads: only then is
#: the node given the container's database unscrubbed.
OWNER_HEADER = 'X-Zerocloud-Container-Owner'
OWNER_HEADER_VALUE = 'yes'
#: The account the job runs for (the client's request path): the object
#: server's sandbox share (``zerovm_account_maxpool``) is per account.  A
#: node's own path may name another account's object it runs next to.
ACCOUNT_HEADER = 'X-Zerocloud-Account'
#: The only body type of both directions.
TAR_CONTENT_TYPE = 'application/x-tar'
#: With ``ACCESS_HEADER: GET``: the ``swift://`` URL of the channel the
#: object in the request path stands for (a symlink's target is read under
#: the name the job gave it).
LOCAL_ALIAS_HEADER = 'X-Zerocloud-Local-Alias'
#: Next to a container: ``{secret id: base64 key}`` (JSON) of the keys that
#: decrypt the etags at-rest encryption stored in its listing, so the node's
#: copy of the database holds the etags a client's listing shows.
LISTING_KEYS_HEADER = 'X-Zerocloud-Listing-Keys'
#: The wire length of the body's last member when it is an input the
#: server may hand to the program as a stream, read as the program reads it
#: (the largest of the node's inputs, sent last).  A server whose node's
#: inputs do not all fit in its RAM limit does so: that input becomes a
#: FIFO, fed from the request body while the node runs; the others are
#: stored first.  The proxy writes that member at the program's pace.
STREAMED_LENGTH_HEADER = 'X-Zerocloud-Streamed-Length'
#: The node's immediate output goes straight to the client (a one-node
#: job): its server may answer while the node runs (``STREAMED_ANSWER``).
#: ``duplex``: even while the request body is still being sent (an input
#: fed live), for the proxy reads the answer as it sends; ``yes`` (an
#: older proxy): only once the body has been read.
ANSWER_STREAM_HEADER = 'X-Zerocloud-Answer-Stream'
ANSWER_STREAM_DUPLEX = 'duplex'
ANSWER_STREAM_AFTER_BODY = 'yes'


def listing_keys_value(keys: Dict[str, bytes]) -> str:
    """``LISTING_KEYS_HEADER``'s value: {secret id: key}, keys base64."""
    return json.dumps({secret: base64.b64encode(key).decode('ascii')
                       for secret, key in keys.items()})


def parse_listing_keys(value: str) -> Dict[Optional[str], bytes]:
    """``LISTING_KEYS_HEADER``'s value as {secret id (None: the default
    one): key}; ValueError when malformed."""
    try:
        raw = json.loads(value)
        if not isinstance(raw, dict):
            raise ValueError('not an object')
        return {(secret or None): base64.b64decode(key, validate=True)
                for secret, key in raw.items()}
    except (TypeError, AttributeError, binascii.Error) as err:
        raise ValueError(str(err))


# -- the answer when the local object is not the object a client GETs
#: Status of that refusal, sent before the body (no ``100 Continue``): the
#: proxy sends the node again with the object streamed through its
#: pipeline (decrypted, decoded, resolved with the caller's rights).
STREAM_INPUT_STATUS = 409
#: Header of that refusal; its value says why (one of ``STREAM_REASONS``).
#: An encrypted object's refusal adds what the proxy needs to let the
#: server read it in place: ``encrypted; timestamp=<the .data file's
#: X-Timestamp>; body_meta=<its X-Object-Sysmeta-Crypto-Body-Meta>`` (the
#: body key in it is wrapped by the object's key, which only the proxy can
#: derive).
STREAM_INPUT_HEADER = 'X-Zerocloud-Stream-Input'
STREAM_ENCRYPTED = 'encrypted'
STREAM_ERASURE_CODED = 'erasure-coded'
STREAM_SLO = 'slo-manifest'
STREAM_DLO = 'dlo-manifest'
STREAM_SYMLINK = 'symlink'
STREAM_REASONS = (STREAM_ENCRYPTED, STREAM_ERASURE_CODED, STREAM_SLO,
                  STREAM_DLO, STREAM_SYMLINK)


def stream_input_value(reason: str, timestamp: Optional[str] = None,
                       body_meta: Optional[str] = None) -> str:
    """``STREAM_INPUT_HEADER``'s value (the proxy reads it with Swift's
    ``parse_header``); an encrypted object's carries its ``.data`` file's
    timestamp and stored body crypto meta."""
    if timestamp is None or body_meta is None:
        return reason
    return '%s; timestamp=%s; body_meta=%s' % (reason, timestamp, body_meta)


#: The proxy's answer to ``encrypted``: a :class:`BodyKey`, for this one
#: request only (never in the system map, a log or a file).
BODY_KEY_HEADER = 'X-Zerocloud-Body-Key'


@dataclass(frozen=True)
class BodyKey:
    """What reading one encrypted object in place needs: its body key, and
    what the key must match on the server (the ``.data`` file's timestamp,
    the IV and key id of its crypto meta, the plaintext's etag)."""
    key: bytes = field(repr=False)
    iv: bytes
    timestamp: str
    key_id: dict
    etag: str

    def encode(self) -> str:
        """The ``BODY_KEY_HEADER`` value."""
        return base64.b64encode(json.dumps({
            'key': base64.b64encode(self.key).decode('ascii'),
            'iv': base64.b64encode(self.iv).decode('ascii'),
            'timestamp': self.timestamp, 'key_id': self.key_id,
            'etag': self.etag}, sort_keys=True).encode('utf-8')
        ).decode('ascii')

    @classmethod
    def decode(cls, value: str) -> 'BodyKey':
        """ValueError when ``value`` is not an encoded BodyKey."""
        try:
            raw = json.loads(base64.b64decode(value, validate=True))
            key_id = raw['key_id']
            if not isinstance(key_id, dict):
                raise ValueError('key_id is not an object')
            return cls(base64.b64decode(raw['key'], validate=True),
                       base64.b64decode(raw['iv'], validate=True),
                       str(raw['timestamp']), key_id, str(raw['etag']))
        except (KeyError, TypeError, AttributeError, binascii.Error) as err:
            raise ValueError('bad body key: %s' % err)


# -- an answer that streams while the node runs
#: Answer header of a streamed answer.  A node whose only output is its
#: immediate one (not CGI) and that writes more than ``STREAM_AFTER``
#: bytes is answered as soon as it has: ``200`` with ``X-Nexe-System`` and
#: ``X-Nexe-Policy`` only, no ``Content-Length``, and a body of members
#: named after the output's device, each a piece of what the program wrote
#: (the first carries its content type), then a last member marked
#: ``PAX_END`` whose data is the node's final ``X-Nexe-*`` headers as a
#: JSON object.  Smaller outputs are answered when the node ends, as
#: usual.  The one output may also be a named device stored as an object,
#: a file the program may seek in: it streams as long as the program
#: writes it in order, and it is sent again whole (``PAX_REPLACES``)
#: when the file differs from what streamed.
STREAMED_ANSWER_HEADER = 'X-Zerocloud-Streamed-Answer'
STREAM_AFTER = 1 << 20
#: Request header, from the client to the proxy and on to the node's
#: server: stream the answer once the program has written more than this
#: many bytes (``0`` to ``STREAM_AFTER``; ``0``: at its first write), for
#: answers whose first bytes matter before the node ends (progress lines,
#: S3 Select's keep-alive events).
STREAM_AFTER_HEADER = 'X-Zerocloud-Stream-After'


def parse_stream_after(value: Optional[str]) -> int:
    """``STREAM_AFTER_HEADER``'s bytes (``STREAM_AFTER`` when absent);
    ValueError when it is not a whole number in range."""
    if value is None:
        return STREAM_AFTER
    if not value.isdigit() or int(value) > STREAM_AFTER:
        raise ValueError('%s must be a whole number of bytes from 0 to %d'
                         % (STREAM_AFTER_HEADER, STREAM_AFTER))
    return int(value)

# -- nodes connected while they run
#: Sent with every node of a job whose connected nodes run at once.  Its
#: server binds the node's in-edges and out-edges to FIFOs
#: (:mod:`zerocloud.object.edges`).  The request body of a node with
#: in-edges is chunked: the usual members, then the pieces of every
#: in-edge as the upstream nodes write them, each a member named after
#: the edge's device and marked ``PAX_EDGE``, and for each edge a last
#: empty member marked ``PAX_EDGE`` and ``PAX_END``.  A node with
#: out-edges is answered as soon as it writes to one (or its run ended):
#: ``200`` with ``STREAMED_ANSWER_HEADER: edges``, then its out-edges'
#: pieces (members marked ``PAX_EDGE``), then its other outputs whole,
#: then the member ``END_MEMBER`` marked ``PAX_END``, whose data is the
#: node's final ``X-Nexe-*`` headers as a JSON object.
EDGE_STREAM_HEADER = 'X-Zerocloud-Edge-Stream'
EDGE_STREAM_VALUE = 'yes'
STREAMED_EDGES = 'edges'
END_MEMBER = 'end'

# -- timing both sides rely on
#: Seconds beyond the node's own timeout within which an object server
#: that has the body answers (queue wait, starting a sandbox, the outputs'
#: headers); the proxy waits that long for the answer's headers.
ANSWER_SLACK = 60
#: Seconds a node may wait in an object server's queue for a sandbox before
#: it is answered busy: well inside ``ANSWER_SLACK``, so waiting in a queue
#: never looks like a failed server.
QUEUE_WAIT = 30
#: The answer of a busy sandbox pool: ``503`` with this header (seconds).
RETRY_AFTER_HEADER = 'Retry-After'
#: The object server's stages of the node, for the proxy's log
#: (:mod:`zerocloud.stages`).
STAGES_HEADER = 'X-Zerocloud-Stages'

# -- members of the request stream
SYSMAP_MEMBER = 'sysmap'
#: The user image (a zapp, or a script wrapped as one).
IMAGE_MEMBER = 'image'
#: An executable fetched from Swift (``exec.path`` is ``swift://``).
EXECUTABLE_MEMBER = 'boot'
#: The largest node description an object server accepts.
MAX_SYSMAP = 1 << 20

# -- PAX keys of an answer's members (after PAX_PREFIX)
PAX_CONTENT_TYPE = 'content_type'
#: A CGI output's status line, ``<code> <reason>``.
PAX_STATUS = 'status'
#: ``header.<Name>``: a header a CGI program printed.
PAX_HEADER_PREFIX = 'header.'
#: ``meta.<key>``: ``X-Object-Meta-<key>`` of the output.
PAX_META_PREFIX = 'meta.'
#: Marks the last member of a streamed answer (its final headers), or of
#: an edge's data.
PAX_END = 'end'
#: Marks a piece of an edge's data (``EDGE_STREAM_HEADER``).
PAX_EDGE = 'edge'
#: Marks a streamed output sent again whole, just before the final
#: headers: what streamed is not what the program left in its file (it
#: wrote out of order, or truncated), so the receiver drops the pieces
#: (abandons their ``PUT``) and takes this member instead.
PAX_REPLACES = 'replaces'


class FramingError(ValueError):
    """The byte stream is not a well-formed member stream."""


def padding(size: int) -> bytes:
    return b'\0' * (-size % BLOCK)


def member_header(name: str, size: int,
                  pax: Optional[Dict[str, str]] = None) -> bytes:
    """Header block(s) of one regular-file member, PAX records included."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    if pax:
        info.pax_headers = {PAX_PREFIX + k: v for k, v in pax.items()}
        return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
    return info.tobuf(tarfile.USTAR_FORMAT, 'utf-8', 'surrogateescape')


def member_length(name: str, size: int,
                  pax: Optional[Dict[str, str]] = None) -> int:
    """Bytes one member occupies on the wire (header, data, padding)."""
    return len(member_header(name, size, pax)) + size + len(padding(size))


def iter_member(name: str, size: int, chunks: Iterable[bytes],
                pax: Optional[Dict[str, str]] = None) -> Iterator[bytes]:
    """Frame a member whose data arrives as chunks totalling ``size``."""
    yield member_header(name, size, pax)
    sent = 0
    for chunk in chunks:
        sent += len(chunk)
        if sent > size:
            raise FramingError('member %s is longer than %d bytes'
                               % (name, size))
        yield chunk
    if sent != size:
        raise FramingError('member %s ended after %d of %d bytes'
                           % (name, sent, size))
    yield padding(size)


def iter_file(path: str, chunk_size: int = 65536) -> Iterator[bytes]:
    with open(path, 'rb') as fp:
        while True:
            chunk = fp.read(chunk_size)
            if not chunk:
                return
            yield chunk


@dataclass
class Member:
    name: str
    size: int
    pax: Dict[str, str] = field(default_factory=dict)


def _parse_pax_records(data: bytes) -> Dict[str, str]:
    records: Dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b' ', pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FramingError('bad PAX record length')
        if length <= 0:
            raise FramingError('bad PAX record length')
        record = data[space + 1:pos + length]
        if not record.endswith(b'\n') or b'=' not in record:
            raise FramingError('bad PAX record')
        key, value = record[:-1].split(b'=', 1)
        records[key.decode('utf-8', 'surrogateescape')] = value.decode(
            'utf-8', 'surrogateescape')
        pos += length
    return records


def _pax_size(value: str) -> int:
    """A PAX ``size`` record's value: decimal digits only."""
    if not (value.isascii() and value.isdigit()):
        raise FramingError('bad PAX size %r' % value[:32])
    return int(value)


class MemberReader:
    """Reads members one after another from a ``read(n)`` callable.

    The stream may end with or without end-of-archive blocks; a short read in
    the middle of a member raises FramingError.
    """

    def __init__(self, read: Callable[[int], bytes]):
        self._read = read
        self._remaining = 0
        self._padding = 0

    def _read_exact(self, size: int) -> bytes:
        parts = []
        while size > 0:
            chunk = self._read(min(size, 65536))
            if not chunk:
                raise FramingError('stream ended early')
            parts.append(chunk)
            size -= len(chunk)
        return b''.join(parts)

    def _header(self) -> Optional[tarfile.TarInfo]:
        first = self._read(BLOCK)
        if not first:
            return None
        if len(first) < BLOCK:
            first += self._read_exact(BLOCK - len(first))
        if first == b'\0' * BLOCK:
            return None
        try:
            return tarfile.TarInfo.frombuf(first, 'utf-8', 'surrogateescape')
        except tarfile.TarError as err:
            raise FramingError('bad member header: %s' % err)

    def next_member(self) -> Optional[Member]:
        """Skip what is left of the current member and read the next header."""
        self.skip()
        info = self._header()
        pax: Dict[str, str] = {}
        while info is not None and info.type in (tarfile.XHDTYPE,
                                                 tarfile.XGLTYPE):
            data = self._read_exact(info.size + len(padding(info.size)))
            pax.update(_parse_pax_records(data[:info.size]))
            info = self._header()
        if info is None:
            return None
        if not info.isreg():
            raise FramingError('member %s is not a regular file' % info.name)
        name = pax.get('path', info.name)
        ours = {k[len(PAX_PREFIX):]: v for k, v in pax.items()
                if k.startswith(PAX_PREFIX)}
        size = _pax_size(pax['size']) if 'size' in pax else info.size
        self._remaining = size
        self._padding = len(padding(size))
        return Member(name, size, ours)

    def read(self, size: int = 65536) -> bytes:
        """Read up to ``size`` bytes of the current member; b'' at its end."""
        if self._remaining <= 0:
            return b''
        chunk = self._read(min(size, self._remaining))
        if not chunk:
            raise FramingError('stream ended inside a member')
        self._remaining -= len(chunk)
        return chunk

    def copy_to(self, fp) -> int:
        """Write the rest of the current member to a file object."""
        written = 0
        while True:
            chunk = self.read()
            if not chunk:
                return written
            fp.write(chunk)
            written += len(chunk)

    def skip(self) -> None:
        while self.read():
            pass
        if self._padding:
            self._read_exact(self._padding)
            self._padding = 0
