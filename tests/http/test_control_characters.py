"""Names and ids with control characters are refused by the HTTP API with a 400 naming the
field (they would forge lines in the text log), through real requests on the ASGI app."""

from __future__ import annotations

import httpx
import pytest

from durablehub.async_client import AsyncDurableClient
from tests.http.conftest import API, new_id

pytestmark = pytest.mark.azurite

CRLF = "%0D%0A2026-01-01%2000:00:00,000%20CRITICAL%20forged"


async def test_control_characters_are_refused_naming_the_field(
    http: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    live = await durable.schedule_new_orchestration("approval", input=600, instance_id=new_id())
    refused = {
        "orchestrator name": await http.post(f"{API}/orchestrators/hello_cities{CRLF}"),
        "instance id": await http.post(f"{API}/orchestrators/hello_cities/{new_id()}{CRLF}"),
        "event name": await http.post(f"{API}/instances/{live}/raiseEvent/Approval{CRLF}", json=True),
        "operation name": await http.post(f"{API}/entities/counter/k?op=add{CRLF}", json=1),
        "entity key": await http.post(f"{API}/entities/counter/k{CRLF}?op=add", json=1),
    }
    await durable.terminate_orchestration(live)
    wrong = {
        field: (response.status_code, response.text)
        for field, response in refused.items()
        if response.status_code != 400
        or field not in response.text
        or "control character" not in response.text
    }
    assert not wrong, wrong
