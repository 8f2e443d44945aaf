# Generated from durablehub/taskhub/aio/large_messages.py by scripts/unasync.py: edit that file instead.
"""LargeMessageStore: gzip payloads in ``{hub}-largemessages``.

Holds queue messages over 45 KiB and table properties over 60 KiB. Blobs of one instance
live under ``{instanceId}/``; deleting them lists that prefix *with* its trailing slash, so
purging ``abc`` never touches ``abcd`` (a known flaw of the reference, taskhub-layout.md §3).
"""

from __future__ import annotations

import gzip
from datetime import datetime
from urllib.parse import unquote

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from durablehub.taskhub.connections import StorageClients
from durablehub.taskhub.names import TaskHubNames, blob_segments, escape_partition_key


class LargeMessageStore:
    def __init__(self, clients: StorageClients, names: TaskHubNames) -> None:
        self._container = clients.blob.get_container_client(names.large_messages_container)
        self.container_name = names.large_messages_container

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
        data = gzip.compress(text.encode("utf-8"))
        blob = self._container.get_blob_client(blob_name)
        try:
            blob.upload_blob(data, overwrite=True)
        except ResourceNotFoundError:  # the container is created on first use, as the reference does
            self.create()
            blob.upload_blob(data, overwrite=True)

    def download(self, blob_name: str) -> str:
        stream = self._container.get_blob_client(blob_name).download_blob()
        data = stream.readall()
        return gzip.decompress(data).decode("utf-8")

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
        prefixes = {blob_segments(escape_partition_key(instance_id)) + "/", blob_segments(instance_id) + "/"}
        names: list[str] = []
        try:
            for prefix in sorted(prefixes):
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

    def delete_instance_blobs(self, instance_id: str, *, written_before: datetime | None = None) -> int:
        """Delete the instance's blobs (``written_before``: only the older ones, see above)."""
        names = self.list_instance_blobs(instance_id, written_before=written_before)
        for name in names:
            self.delete(name)
        return len(names)
