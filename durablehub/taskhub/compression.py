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
    """Bytes that the blobs of one page of results may still inflate to, shared by the
    downloads running at once (they inflate on worker threads, hence the lock)."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    def charge(self, size: int) -> None:
        """Count ``size`` bytes; raise PageBudgetExhausted once the budget is spent."""
        with self._lock:
            self._left -= size
            if self._left < 0:
                raise PageBudgetExhausted

    def charge_always(self, size: int) -> None:
        """Count ``size`` bytes without ever refusing (the first row of a page always fits)."""
        with self._lock:
            self._left -= size
