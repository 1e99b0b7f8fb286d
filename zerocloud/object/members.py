"""The members of an execution request's body: stored, or fed live.

The proxy streams a node's members (:mod:`zerocloud.protocol`): the system
map first, then the image, a fetched program and the inputs, the largest
input last.  :class:`RequestBody` stores them as files in the node's RAM
directory, at most ``zerovm_ram_limit`` bytes with what the node holds in
RAM already.  When the node's inputs do not all fit and the proxy marked
the last one streamable (``X-Zerocloud-Streamed-Length``), that one is not
stored: it becomes a FIFO (:class:`LiveInput`) that a green thread feeds
from the request body while the node runs, at the pace the program reads.
The program sees a sequential device there: a seek fails (``ESPIPE``).
Any other input that does not fit in RAM any more is spilled: stored on
the device, in the node's directory there, sealed (encrypted as it
arrives under a key made for it and held in memory only,
:mod:`zerocloud.cipher`), and read by the program through the sandbox,
which decrypts what it reads (:mod:`zerocloud.runtime.served`): a file
like any other, seekable, of any size up to ``zerovm_maxinput``.  The
system map, an image and a program must fit in RAM (else ``413``).

A program that stops reading early leaves the rest of the body unread; it
is read and dropped after the run, so the proxy, still sending it, gets the
answer instead of a broken connection.
"""

import os
from typing import Callable, Dict, Optional, Tuple

import eventlet
from swift.common.swob import (
    HTTPBadRequest, HTTPClientDisconnect, HTTPException,
    HTTPRequestEntityTooLarge, Request)

from zerocloud import protocol
from zerocloud.cipher import CipherKey, SealedWriter
from zerocloud.object.fifo import make_fifo, write_all

#: Bytes moved per read from the request body.
CHUNK = 65536
#: Members that are not inputs: never fed live.
NOT_INPUTS = (protocol.SYSMAP_MEMBER, protocol.IMAGE_MEMBER,
              protocol.EXECUTABLE_MEMBER)


def over_ram_limit(req: Request, size: int, limit: int) -> HTTPException:
    return HTTPRequestEntityTooLarge(
        body='The node needs %d bytes of inputs in memory; this server '
             'keeps at most %d per node (zerovm_ram_limit)'
             % (size, limit), request=req)


def streamed_length(req: Request) -> int:
    """The wire length of the body's streamable last member (0: none)."""
    value = req.headers.get(protocol.STREAMED_LENGTH_HEADER, '')
    length = int(value) if value.isascii() and value.isdigit() else 0
    return length if 0 < length <= (req.content_length or 0) else 0


def live_length(req: Request, ram_limit: int, in_ram: int = 0) -> int:
    """The wire length of the last member to feed live: the streamable
    one, when the body does not fit in RAM with ``in_ram``; else 0."""
    if in_ram + (req.content_length or 0) <= ram_limit:
        return 0
    return streamed_length(req)


class LiveInput:
    """One input fed to the program through a FIFO as the body arrives."""

    def __init__(self, name: str, path: str, size: int,
                 reader: protocol.MemberReader):
        self.name = name
        #: The FIFO, in the node's RAM directory.
        self.path = path
        self.size = size
        self._reader = reader
        # Read and written here: the program's reads see the end only when
        # this side closes.
        self._fd = make_fifo(path, os.O_RDWR)
        self._feeder: Optional[eventlet.greenthread.GreenThread] = None
        self._dropped = False
        self.fed = 0
        #: The body ended (the proxy went away) before the member did.
        self.broken = False

    def start(self) -> None:
        self._feeder = eventlet.spawn(self._feed)

    def _feed(self) -> None:
        try:
            while True:
                chunk = self._reader.read(CHUNK)
                if not chunk:
                    break
                write_all(self._fd, chunk)
                self.fed += len(chunk)
        except (protocol.FramingError, HTTPException, OSError):
            self.broken = True
        finally:
            self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def drop(self) -> None:
        """Stop feeding; read and drop what the program did not read (so
        the proxy, still sending it, gets the answer).  Once only."""
        if self._feeder is not None:
            self._feeder.kill()
            self._feeder = None
        self._close()
        if not self._dropped:
            self._dropped = True
            try:
                self._reader.skip()
            except (protocol.FramingError, HTTPException, OSError):
                self.broken = True

    def finish(self) -> None:
        """After the run: :meth:`drop`, then raise
        ``HTTPClientDisconnect`` if the body broke off, so that the node's
        result is not taken for one over its whole input."""
        self.drop()
        if self.broken:
            raise HTTPClientDisconnect(body='The request body ended inside '
                                       'input %s' % self.name)


class RequestBody:
    """Reads one execution request's members (see the module docstring)."""

    def __init__(self, req: Request, max_input: int, ram_limit: int,
                 in_ram: int, is_member_name: Callable[[str], bool]):
        self.req = req
        self.max_input = max_input
        self.ram_limit = ram_limit
        #: Bytes the node holds in RAM: before the body, then with the
        #: members stored there.
        self.in_ram = in_ram
        self.is_member_name = is_member_name
        self.expected = req.content_length
        self.total = 0
        #: Spilled inputs (their files on the device), by member name, and
        #: the keys they are sealed with.
        self.sealed: Dict[str, CipherKey] = {}
        #: The body ended before its Content-Length: the client went away.
        self.cut_short = False
        #: The body's reader, and its first member of in-edge data
        #: (:mod:`zerocloud.object.edges`) if it has one: the node's
        #: in-edges are read from there while it runs.
        self.reader: Optional[protocol.MemberReader] = None
        self.edge_start: Optional[protocol.Member] = None
        self._input = req.environ['wsgi.input']
        self._streamed = live_length(req, ram_limit, in_ram)

    def _read(self, size: int) -> bytes:
        req = self.req
        try:
            chunk = self._input.read(size)
        except (ValueError, OSError):
            # A chunked body that broke off (eventlet's ChunkReadError).
            self.cut_short = True
            raise HTTPClientDisconnect(request=req)
        self.total += len(chunk)
        expected = self.expected
        if not chunk and expected is not None and self.total < expected:
            self.cut_short = True
        if self.total > self.max_input:
            raise HTTPRequestEntityTooLarge(body='RPC request too large',
                                            request=req)
        if expected is not None and self.total > expected:
            raise HTTPBadRequest(
                body="Actual content length is greater than the "
                     "'Content-Length' header", request=req)
        return chunk

    def _is_live(self, member: protocol.Member) -> bool:
        """Is ``member`` the streamable last one, to be fed live?"""
        return bool(self._streamed) and member.name not in NOT_INPUTS and \
            self.expected - self.total == \
            member.size + len(protocol.padding(member.size))

    def _store(self, reader: protocol.MemberReader, member: protocol.Member,
               name: str, ramdir: str, spill_dir: str) -> str:
        """Copy ``member`` to file ``name`` in ``ramdir``, or sealed in
        ``spill_dir`` if it is an input RAM has no room for any more; a
        member that must be in RAM and does not fit is ``413``.  The
        file's path."""
        if self.in_ram + member.size <= self.ram_limit:
            self.in_ram += member.size
            dest = os.path.join(ramdir, name)
            with open(dest, 'wb') as fp:
                reader.copy_to(fp)
            return dest
        if member.name in NOT_INPUTS:
            raise over_ram_limit(self.req, self.in_ram + member.size,
                                 self.ram_limit)
        key = self.sealed[member.name] = CipherKey.fresh()
        dest = os.path.join(spill_dir, name)
        with open(dest, 'wb') as fp:
            reader.copy_to(SealedWriter(fp, key))
        return dest

    def receive(self, ramdir: str, spill_dir: str
                ) -> Tuple[Dict[str, str], Optional[LiveInput]]:
        """The members by name (their files in ``ramdir``, or ``spill_dir``
        for the spilled ones: see :attr:`sealed`), and the live input if
        one is fed while the node runs."""
        req = self.req
        reader = self.reader = protocol.MemberReader(self._read)
        members: Dict[str, str] = {}
        try:
            while True:
                member = reader.next_member()
                if member is None:
                    break
                if protocol.PAX_EDGE in member.pax:
                    self.edge_start = member
                    return members, None
                name = member.name
                if not self.is_member_name(name) or name in members:
                    raise HTTPBadRequest(body='Bad member name %r' % name,
                                         request=req)
                file_name = 'in.%d' % len(members)
                if self._is_live(member):
                    dest = os.path.join(ramdir, file_name)
                    members[name] = dest
                    return members, LiveInput(name, dest, member.size,
                                              reader)
                members[name] = self._store(reader, member, file_name,
                                            ramdir, spill_dir)

        except protocol.FramingError as err:
            if self.cut_short:
                raise HTTPClientDisconnect(request=req)
            raise HTTPBadRequest(body='Bad request body: %s' % err,
                                 request=req)
        if self.expected is not None and self.total < self.expected:
            raise HTTPClientDisconnect(request=req)
        return members, None
