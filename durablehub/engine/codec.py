"""JSON payloads: user values in, the JSON text stored in history and messages out.

Inputs, outputs, event data and custom status are plain JSON. Dataclass instances and pydantic
models are accepted and turned into JSON objects; anything else that JSON cannot represent
(sets, datetimes, arbitrary objects, NaN) is refused with a ``PayloadError`` that names the
payload ("input of activity 'X'"), the offending type and where it sits inside the value.
Decoding with an expected type rebuilds dataclasses and pydantic models (through pydantic).

The text is compact (no spaces) and keeps non-ASCII characters, as Newtonsoft writes it.
``JsonText`` is text its sender serialized (the sidecar's SDK payloads): stored as it is.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from typing import Any, Protocol

import pydantic

from durablehub.errors import PayloadError, PayloadTooLargeError

__all__ = [
    "Codec",
    "JsonCodec",
    "JSON_CODEC",
    "JsonText",
    "check_size",
    "decode",
    "encode",
    "is_structured_type",
]


class JsonText(str):
    """A payload its sender serialized already (a Durable Task SDK's), stored verbatim.

    Not checked: the SDKs own their serialization (JSON by default, a custom data converter or
    large-payload references otherwise) and read it back themselves."""

    __slots__ = ()


class Codec(Protocol):
    """What the engine needs from a payload codec."""

    def encode(self, value: Any, *, what: str = "payload") -> str | None: ...

    def decode(self, text: str | None, type_: Any = None, *, what: str = "payload") -> Any: ...


class JsonCodec:
    """The default codec: JSON text, dataclasses and pydantic models in and out."""

    def encode(self, value: Any, *, what: str = "payload") -> str | None:
        """Return the JSON text of ``value`` (``None`` stays ``None``: nothing is stored).

        Raises:
            PayloadError: the value, or something inside it, is not JSON-serializable.
        """
        if value is None:
            return None
        if isinstance(value, JsonText):
            return str(value)
        plain = _to_json_value(value, "$", what)
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def decode(self, text: str | None, type_: Any = None, *, what: str = "payload") -> Any:
        """Parse JSON ``text``; with ``type_``, validate it into that type (dataclass, model, ...).

        Raises:
            PayloadError: the text is not JSON, or does not fit ``type_``.
        """
        if text is None or text == "":
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise PayloadError(f"{what} is not valid JSON ({exc}): {_preview(text)}") from exc
        if type_ is None or type_ is Any or type_ is object:
            return value
        try:
            return _adapter(type_).validate_python(value)
        except pydantic.ValidationError as exc:
            raise PayloadError(f"{what} does not fit {_type_name(type_)}: {exc}") from exc
        except pydantic.PydanticSchemaGenerationError as exc:
            raise PayloadError(f"{what}: cannot decode into {_type_name(type_)}: {exc}") from exc


JSON_CODEC = JsonCodec()


class SizeLimitedCodec:
    """A codec whose payloads are at most ``max_bytes`` of JSON: the one user code gets, so that
    an orchestrator's or entity's payload over the hub's limit fails where it is made (the code
    may catch ``PayloadTooLargeError``) instead of becoming a message a worker refuses to read."""

    def __init__(self, inner: Codec, max_bytes: int | None) -> None:
        self._inner = inner
        self._max_bytes = max_bytes

    def encode(self, value: Any, *, what: str = "payload") -> str | None:
        return check_size(self._inner.encode(value, what=what), what=what, max_bytes=self._max_bytes)

    def decode(self, text: str | None, type_: Any = None, *, what: str = "payload") -> Any:
        return self._inner.decode(text, type_, what=what)


def encode(value: Any, *, what: str = "payload") -> str | None:
    """``JSON_CODEC.encode``."""
    return JSON_CODEC.encode(value, what=what)


def decode(text: str | None, type_: Any = None, *, what: str = "payload") -> Any:
    """``JSON_CODEC.decode``."""
    return JSON_CODEC.decode(text, type_, what=what)


def check_size(text: str | None, *, what: str, max_bytes: int | None) -> str | None:
    """``text`` if its UTF-8 form is at most ``max_bytes`` long (None: no limit).

    Raises:
        PayloadTooLargeError: it is longer, naming the payload, its size and the setting.
    """
    if text is None or max_bytes is None or len(text) * 4 <= max_bytes:  # 4: the most bytes a char takes
        return text
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"{what} is {size:,} bytes of JSON, more than max_payload_bytes={max_bytes:,} "
            "(DURABLEHUB_MAX_PAYLOAD_BYTES): keep large data elsewhere (a blob) and pass a reference",
            size=size,
            limit=max_bytes,
        )
    return text


def is_structured_type(type_: Any) -> bool:
    """True for dataclass and pydantic model classes: the types inputs are rebuilt into."""
    if not isinstance(type_, type):
        return False
    return dataclasses.is_dataclass(type_) or issubclass(type_, pydantic.BaseModel)


def _to_json_value(value: Any, path: str, what: str) -> Any:
    # Exact JSON scalars first; bool/int/str subclasses (IntEnum, StrEnum) are JSON too.
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError(
                f"{what} is not JSON-serializable: {value!r} at {path} (JSON has no NaN/Infinity)"
            )
        return value
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _to_json_value(getattr(value, f.name), f"{path}.{f.name}", what)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(
                    f"{what} is not JSON-serializable: key {key!r} of type {_type_name(type(key))} at {path} "
                    "(JSON object keys must be strings)"
                )
            out[key] = _to_json_value(item, f"{path}.{key}", what)
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json_value(item, f"{path}[{i}]", what) for i, item in enumerate(value)]
    hint = " (convert it to an ISO string first)" if hasattr(value, "isoformat") else ""
    raise PayloadError(
        f"{what} is not JSON-serializable: value of type {_type_name(type(value))} at {path}{hint}; "
        "use JSON types, dataclasses or pydantic models"
    )


def _adapter(type_: Any) -> pydantic.TypeAdapter[Any]:
    try:
        return _cached_adapter(type_)
    except TypeError:  # an unhashable type expression: build it each time
        return pydantic.TypeAdapter(type_)


@functools.lru_cache(maxsize=256)
def _cached_adapter(type_: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(type_)


def _type_name(type_: Any) -> str:
    if isinstance(type_, type):
        return (
            type_.__qualname__
            if type_.__module__ == "builtins"
            else f"{type_.__module__}.{type_.__qualname__}"
        )
    return repr(type_)


def _preview(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
