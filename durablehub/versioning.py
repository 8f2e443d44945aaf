"""Orchestration versions: the worker's policy and the one comparison of versions.

Names follow durabletask-python (``VersioningOptions``, ``VersionMatchStrategy``,
``VersionFailureStrategy``); the check is DurableTask.Core's orchestration dispatcher's, run
before every episode: NONE runs everything, STRICT only the worker's own version,
CURRENT_OR_OLDER anything not newer than the worker's. On a mismatch FAIL fails the instance
(error type ``VersionMismatch``) without running its code; REJECT leaves it untouched for a
worker whose version fits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

__all__ = [
    "VERSION_MISMATCH",
    "VersionFailureStrategy",
    "VersionMatchStrategy",
    "VersioningOptions",
    "compare_versions",
    "version_mismatch",
]

VERSION_MISMATCH = "VersionMismatch"
"""The error type of an instance failed by the FAIL strategy (DurableTask.Core's)."""


_E = TypeVar("_E", bound=StrEnum)


class VersionMatchStrategy(StrEnum):
    NONE = "none"
    """Every instance is run, whatever its version (the default)."""
    STRICT = "strict"
    """Only instances of the worker's version (``compare_versions`` equal)."""
    CURRENT_OR_OLDER = "current_or_older"
    """Instances of the worker's version or older ones."""


class VersionFailureStrategy(StrEnum):
    REJECT = "reject"
    """Leave the instance as it is; its messages come back for another worker (the default)."""
    FAIL = "fail"
    """Fail the instance with error type ``VersionMismatch``; its code is not run."""


@dataclass(frozen=True, slots=True)
class VersioningOptions:
    """A worker's versioning policy.

    ``version``: the orchestration version this worker's code is (compared under
    ``match_strategy``). ``default_version``: the version of sub-orchestrations started
    without ``version=`` (as every Microsoft SDK does: the worker's, not the parent's).
    """

    version: str | None = None
    default_version: str | None = None
    match_strategy: VersionMatchStrategy = VersionMatchStrategy.NONE
    failure_strategy: VersionFailureStrategy = VersionFailureStrategy.REJECT

    def __post_init__(self) -> None:
        for field in ("version", "default_version"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"VersioningOptions.{field} must be a string, got {type(value).__name__}")
        # Accept the names in any case ("STRICT", "Strict"), as environment variables give them.
        object.__setattr__(self, "match_strategy", _member(VersionMatchStrategy, self.match_strategy))
        object.__setattr__(self, "failure_strategy", _member(VersionFailureStrategy, self.failure_strategy))


def _member(enum: type[_E], value: object) -> _E:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.strip().lower())
        except ValueError:
            pass
    choices = ", ".join(m.name for m in enum)
    raise ValueError(f"{value!r} is not a {enum.__name__}; choose one of {choices}")


_NUMERIC = re.compile(r"\d+(?:\.\d+)*")


def compare_versions(a: str | None, b: str | None) -> int:
    """-1, 0 or 1 as version ``a`` is older than, the same as, or newer than ``b``.

    - An empty version (``None``, ``""``, blanks) is older than any other; two empty are equal.
    - Two numeric dotted versions ("2", "1.10.0") compare number by number, missing trailing
      numbers counting as 0: "1.10" > "1.9", "10" > "9", "1.0" == "1.0.0".
    - Anything else is an ordinal comparison ignoring case: "beta" > "Alpha".

    Where DurableTask.Core (``VersioningSettings.CompareVersions``) differs: it parses with
    .NET's ``System.Version``, which needs two to four numbers, so "10" < "9" there (a string
    comparison) and "1.0" < "1.0.0"; durablehub compares any count of numbers, so that
    versions numbered 1, 2, ..., 10 are ordered as people expect. Prefer dotted versions with
    at least two numbers ("1.0", "2.0") where .NET workers share the hub.
    """
    a_text, b_text = (a or "").strip(), (b or "").strip()
    if not a_text or not b_text:
        return (bool(a_text) > bool(b_text)) - (bool(a_text) < bool(b_text))
    if _NUMERIC.fullmatch(a_text) and _NUMERIC.fullmatch(b_text):
        left = [int(p) for p in a_text.split(".")]
        right = [int(p) for p in b_text.split(".")]
        width = max(len(left), len(right))
        left += [0] * (width - len(left))
        right += [0] * (width - len(right))
        return (left > right) - (left < right)
    a_key, b_key = a_text.upper(), b_text.upper()  # .NET's OrdinalIgnoreCase compares upper case
    return (a_key > b_key) - (a_key < b_key)


def version_mismatch(options: VersioningOptions | None, version: str | None) -> str | None:
    """Why a worker with ``options`` must not run an instance of ``version``; None if it may."""
    if options is None:
        return None
    strategy = options.match_strategy
    if strategy is VersionMatchStrategy.STRICT:
        if compare_versions(version, options.version) != 0:
            return (
                f"the orchestration version {_show(version)} does not match the worker version "
                f"{_show(options.version)} (match strategy STRICT)"
            )
    elif strategy is VersionMatchStrategy.CURRENT_OR_OLDER:
        if compare_versions(version, options.version) > 0:
            return (
                f"the orchestration version {_show(version)} is newer than the worker version "
                f"{_show(options.version)} (match strategy CURRENT_OR_OLDER)"
            )
    return None


def _show(version: str | None) -> str:
    return repr(version) if version else "(none)"
