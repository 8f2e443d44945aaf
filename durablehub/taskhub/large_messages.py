# Generated from durablehub/taskhub/aio/large_messages.py by scripts/unasync.py: edit that file instead.
"""LargeMessageStore: gzip payloads in ``{hub}-largemessages``.

Holds queue messages over 45 KiB and table properties over 60 KiB. Blobs of one instance
live under ``{instanceId}/``; deleting them lists that prefix *with* its trailing slash, so
purging ``abc`` never touches ``abcd`` (a known flaw of the reference, taskhub-layout.md §3).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import unquote

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from durablehub.errors import MalformedMessageError, PayloadTooLargeError
from durablehub.taskhub import compression
from durablehub.taskhub.connections import StorageClients
from durablehub.taskhub.names import TaskHubNames, blob_segments, escape_partition_key
from durablehub.taskhub.offload import in_thread

_FOLDERS_PER_PAGE = 5000  # the service's most


def _total_size(content_range: str | None, fallback: int) -> int:
    """The whole blob's size from ``bytes 0-N/TOTAL``."""
    total = (content_range or "").rpartition("/")[2]
    return int(total) if total.isdigit() else fallback


class LargeMessageStore:
    def __init__(self, clients: StorageClients, names: TaskHubNames) -> None:
        self._container = clients.blob.get_container_client(names.large_messages_container)
        self.container_name = names.large_messages_container
        self.max_decompressed_bytes = clients.settings.max_decompressed_bytes

    def create(self) -> None:
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass

    def delete_container(self) -> None:
        try:
            self._container.delete_container()
        except ResourceNotFoundError:
            pass

    def exists(self) -> bool:
        return bool(self._container.exists())

    def url(self, blob_name: str) -> str:
        """Full URL of a blob, each path segment escaped (what the Instances table stores)."""
        return self._container.get_blob_client(blob_name).url

    def blob_name_from_url(self, value: str) -> str | None:
        """The blob name if ``value`` is a URL into this container, else None."""
        prefix = self._container.url.rstrip("/") + "/"
        if not value.startswith(prefix):
            return None
        return "/".join(unquote(seg) for seg in value[len(prefix) :].split("/"))

    def upload(self, blob_name: str, text: str) -> None:
        data = in_thread(compression.gzip_text, text)  # only large texts come here
        blob = self._container.get_blob_client(blob_name)
        try:
            blob.upload_blob(data, overwrite=True)
        except ResourceNotFoundError:  # the container is created on first use, as the reference does
            self.create()
            blob.upload_blob(data, overwrite=True)

    def download(self, blob_name: str, *, charge: Callable[[int], None] | None = None) -> str:
        """The text in a blob, inflated to at most ``max_decompressed_bytes``.

        ``charge`` is told each inflated chunk's size (a query page's budget) and may raise.

        Raises:
            ResourceNotFoundError: no such blob.
            PayloadTooLargeError: it is, or inflates to, more than ``max_decompressed_bytes``.
            MalformedMessageError: the blob is not gzip, or not UTF-8 inside.
        """
        limit = self.max_decompressed_bytes
        most = limit + limit // 1000 + 1024  # compressed: what gzip adds to data it cannot shrink
        try:  # a range: a larger blob is refused after reading no more than that
            stream = self._container.get_blob_client(blob_name).download_blob(offset=0, length=most + 1)
        except HttpResponseError as exc:
            if exc.status_code != 416:  # the range of an empty blob
                raise
            raise MalformedMessageError(f"large message blob {blob_name!r} is empty") from exc
        size = _total_size(stream.properties.content_range, stream.size)
        if size > most:
            raise PayloadTooLargeError(
                f"large message blob {blob_name!r} is {size:,} bytes compressed, more than "
                f"max_decompressed_bytes={limit:,} (DURABLEHUB_MAX_DECOMPRESSED_BYTES)",
                size=size,
                limit=limit,
            )
        data = stream.readall()
        return in_thread(compression.inflate_text, data, blob_name, limit, charge)

    def delete(self, blob_name: str) -> None:
        try:
            self._container.delete_blob(blob_name)
        except ResourceNotFoundError:
            pass

    def list_instance_blobs(
        self, instance_id: str, *, written_before: datetime | None = None
    ) -> list[str]:
        """Every blob of one instance: history blobs (escaped id) and message blobs (raw id);
        with ``written_before`` (the service's clock), only those last written before it."""
        names: list[str] = []
        try:
            for prefix in _prefixes(instance_id):
                for blob in self._container.list_blobs(name_starts_with=prefix):
                    if (
                        written_before is None
                        or blob.last_modified is None
                        or blob.last_modified <= written_before
                    ):
                        names.append(blob.name)
        except ResourceNotFoundError:
            return []
        return names

    def delete_instance_blobs(
        self,
        instance_id: str,
        *,
        written_before: datetime | None = None,
        folders: frozenset[str] | None = None,
    ) -> int:
        """Delete the instance's blobs (``written_before``: only the older ones, see above).
        ``folders`` (from ``instance_folders``, listed after the instance was found) spares
        the listing of an instance without a folder: any blob it has was written since."""
        if folders is not None and not any(
            p.split("/", 1)[0] + "/" in folders for p in _prefixes(instance_id)
        ):
            return 0
        names = self.list_instance_blobs(instance_id, written_before=written_before)
        for name in names:
            self.delete(name)
        return len(names)

    def instance_folders(self, *, max_pages: int) -> frozenset[str] | None:
        """The container's top-level folders (``{instanceId}/``) from one listing by delimiter,
        for a purge of many instances; None (list each instance instead) when it is missing
        or holds more than ``max_pages`` pages of 5,000 folders."""
        folders: set[str] = set()
        pages = self._container.walk_blobs(delimiter="/", results_per_page=_FOLDERS_PER_PAGE).by_page()
        try:
            count = 0
            for page in pages:
                count += 1
                if count > max_pages:
                    return None
                for item in page:
                    folders.add(item.name)
        except ResourceNotFoundError:
            return frozenset()
        return frozenset(folders)


def _prefixes(instance_id: str) -> list[str]:
    """Where an instance's blobs live: history blobs by escaped id, message blobs by raw id."""
    return sorted({blob_segments(escape_partition_key(instance_id)) + "/", blob_segments(instance_id) + "/"})
