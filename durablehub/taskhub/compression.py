"""Gzip text for the large-message container, and inflate it back within a byte limit.

The reference writes these blobs with .NET's GZipStream, so they stay gzip. Inflating is
streamed and stops as soon as the output passes the limit: a small blob that inflates to
gigabytes (a "zip bomb") costs one chunk of memory, not gigabytes. Both are CPU-bound and
run off the event loop for large inputs (``durablehub.taskhub.offload``).
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable

from durablehub.errors import MalformedMessageError, PayloadTooLargeError

# zlib's default: a quarter of level 9's time for about 1% more bytes on JSON.
COMPRESS_LEVEL = 6
_CHUNK = 1024 * 1024  # inflated bytes per step


def gzip_text(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=COMPRESS_LEVEL)


def inflate_text(
    data: bytes, blob_name: str, max_bytes: int, charge: Callable[[int], None] | None = None
) -> str:
    """The UTF-8 text gzipped in ``data`` (one or more gzip members).

    ``charge`` is told each inflated chunk's size (a page's shared budget) and may raise.

    Raises:
        PayloadTooLargeError: it inflates to more than ``max_bytes``.
        MalformedMessageError: it is not gzip, is cut short, or is not UTF-8 inside.
    """
    parts: list[bytes] = []
    total = 0
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
            pending = rest
            while not inflater.eof:
                chunk = inflater.decompress(pending, _CHUNK)
                pending = inflater.unconsumed_tail
                if not chunk and not pending and not inflater.eof:
                    raise MalformedMessageError(f"large message blob {blob_name!r} is gzip cut short")
                total += len(chunk)
                if total > max_bytes:
                    raise PayloadTooLargeError(
                        f"large message blob {blob_name!r} inflates to more than "
                        f"max_decompressed_bytes={max_bytes:,} (DURABLEHUB_MAX_DECOMPRESSED_BYTES)",
                        size=total,
                        limit=max_bytes,
                    )
                if charge is not None:
                    charge(len(chunk))
                parts.append(chunk)
            rest = inflater.unused_data.lstrip(b"\x00")  # gzip allows trailing zero padding
            if not rest:
                break
    except zlib.error as exc:
        raise MalformedMessageError(f"large message blob {blob_name!r} is not gzip ({exc})") from exc
    try:
        return b"".join(parts).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessageError(f"large message blob {blob_name!r} is not UTF-8 ({exc})") from exc


class PageBudgetExhausted(Exception):
    """A page of query results has inflated all the bytes it may: it ends before this row."""


class ByteBudget:
    """Bytes the blobs of one page of results may inflate to, shared by rows downloaded at
    once (inflating on worker threads, hence the lock). Earlier rows come first: row ``i`` is
    refused only when rows ``0..i`` together pass the limit (row 0 never is), and rows after the
    first refused one are refused at once. Rows still running may together hold up to twice the
    limit before the later ones are refused; ``fits`` then says where the page ends."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._rows: dict[int, int] = {}
        self._total = 0
        self._cut: int | None = None  # the first row refused: it and all after it are left out
        self._lock = threading.Lock()

    def refuses(self, row: int) -> bool:
        """Whether ``row`` is past the page's end already (not worth starting)."""
        with self._lock:
            if self._cut is not None and row >= self._cut:
                return True
            return row > 0 and sum(self._rows.values()) >= self._limit and self._prefix(row) >= self._limit

    def charger(self, row: int) -> Callable[[int], None]:
        """What ``row``'s downloads call with each inflated chunk's size; it raises
        PageBudgetExhausted when the row no longer fits in the page."""

        def charge(size: int) -> None:
            with self._lock:
                self._rows[row] = self._rows.get(row, 0) + size
                self._total += size
                if row == 0:
                    return
                if (self._cut is not None and row >= self._cut) or (
                    self._prefix(row) > self._limit or self._total > 2 * self._limit
                ):
                    self._cut = row if self._cut is None else min(self._cut, row)
                    self._total -= self._rows.pop(row)  # dropped: its chunks are garbage now
                    raise PageBudgetExhausted

        return charge

    def fits(self, rows: int) -> int:
        """How many of the first ``rows`` rows (all downloaded) fit in the page, in order."""
        total = 0
        for row in range(rows):
            total += self._rows.get(row, 0)
            if row > 0 and total > self._limit:
                return row
        return rows

    def _prefix(self, row: int) -> int:
        return sum(size for index, size in self._rows.items() if index <= row)
