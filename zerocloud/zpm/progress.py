"""Progress bars on stderr for transfers of a few MB and more.

A bar appears only when stderr is a terminal and the transfer is at least
:data:`MIN_BYTES` long, so scripts and small transfers print nothing extra.
"""

import sys
from typing import BinaryIO, Iterable, Iterator, Optional

from tqdm import tqdm

MIN_BYTES = 4 << 20


def bar(total: Optional[int], label: str) -> tqdm:
    """A byte counter for ``total`` bytes (disabled below MIN_BYTES or
    when stderr is not a terminal)."""
    return tqdm(total=total, desc=label, unit='B', unit_scale=True,
                unit_divisor=1024, leave=False, file=sys.stderr,
                disable=not (total and total >= MIN_BYTES
                             and sys.stderr.isatty()))


class ProgressReader:
    """A file being uploaded: reads advance the bar.

    ``len()`` gives requests and swiftclient the Content-Length.
    """

    def __init__(self, handle: BinaryIO, size: int, label: str):
        self.handle = handle
        self.size = size
        self.progress = bar(size, label)

    def __len__(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.progress.update(len(data))
        if not data:
            self.progress.close()
        return data


def counted(chunks: Iterable[bytes], total: Optional[int], label: str
            ) -> Iterator[bytes]:
    """``chunks`` of a download, advancing a bar."""
    with bar(total, label) as progress:
        for chunk in chunks:
            progress.update(len(chunk))
            yield chunk
