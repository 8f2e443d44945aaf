"""Read raw table rows with their Edm types, as Storage Explorer and the C# reader see them."""

from __future__ import annotations

import json
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import TableClient

from durablehub.settings import TaskHubSettings
from durablehub.taskhub.names import escape_partition_key


def raw_rows(settings: TaskHubSettings, table: str, instance_id: str) -> list[dict[str, Any]]:
    """Rows of one partition as the service's full-metadata JSON: ``Col@odata.type`` per column."""
    account = settings.storage_account()
    assert account.account_key is not None
    captured: list[str] = []
    client = TableClient(
        endpoint=account.table_url,
        table_name=table,
        credential=AzureNamedKeyCredential(account.account_name, account.account_key.get_secret_value()),
    )
    with client:
        list(
            client.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": escape_partition_key(instance_id)},
                headers={"Accept": "application/json;odata=fullmetadata"},
                raw_response_hook=lambda resp: captured.append(resp.http_response.text()),
            )
        )
    rows: list[dict[str, Any]] = []
    for page in captured:
        rows.extend(json.loads(page)["value"])
    return rows


def edm_types(row: dict[str, Any]) -> dict[str, str]:
    """Column → Edm type; JSON strings and booleans and Int32 carry no annotation in some
    services, so the JSON type decides there (as the OData spec does)."""
    types: dict[str, str] = {}
    for key, value in row.items():
        if key.startswith("odata.") or "@odata" in key:
            continue
        annotated = row.get(f"{key}@odata.type")
        if annotated:
            types[key] = annotated
        elif isinstance(value, bool):
            types[key] = "Edm.Boolean"
        elif isinstance(value, int):
            types[key] = "Edm.Int32"
        elif isinstance(value, float):
            types[key] = "Edm.Double"
        else:
            types[key] = "Edm.String"
    return types
