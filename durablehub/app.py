"""App: the registry of an application's orchestrators, activities and entities, by name.

::

    app = App()

    @app.activity                       # registered as "charge"
    def charge(ctx: ActivityContext, order: dict) -> str: ...

    @app.orchestrator(name="ProcessOrder")
    def process_order(ctx: OrchestrationContext, order: dict): ...

Decorators return the function unchanged, apart from noting its registered name on it so
that ``ctx.call_activity(charge)`` uses that name. Orchestrator and activity names are
case-sensitive (as durabletask's); entity names are case-insensitive (as Durable Entities').
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from durablehub.errors import ConfigurationError
from durablehub.task import REGISTERED_NAME_ATTRIBUTE
from durablehub.versioning import compare_versions

__all__ = ["App", "RegisteredActivity", "RegisteredEntity", "RegisteredOrchestrator", "UnknownVersionError"]

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["orchestrator", "activity", "entity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredOrchestrator:
    name: str
    fn: Callable[..., Any]
    version: str | None = None
    """The version this code is for; ``None``: any version no versioned registration has."""


class UnknownVersionError(LookupError):
    """The orchestrator has versioned code, none for the instance's version and no fallback."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredActivity:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    """``async def`` activity: the worker awaits it instead of running it in a thread."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredEntity:
    name: str
    """The name as registered; lookups ignore case."""
    target: Callable[..., Any] | type


class App:
    """Orchestrators, activities and entities, registered by name for a worker to run."""

    def __init__(self) -> None:
        self._orchestrators: dict[str, RegisteredOrchestrator] = {}  # unversioned: the fallbacks
        self._versioned: dict[str, list[RegisteredOrchestrator]] = {}
        self._activities: dict[str, RegisteredActivity] = {}
        self._entities: dict[str, RegisteredEntity] = {}  # keyed by casefolded name

    # --- decorators ---

    @overload
    def orchestrator(self, fn: F, /) -> F: ...
    @overload
    def orchestrator(
        self, fn: None = None, /, *, name: str | None = None, version: str | None = None
    ) -> Callable[[F], F]: ...

    def orchestrator(
        self, fn: F | None = None, /, *, name: str | None = None, version: str | None = None
    ) -> F | Callable[[F], F]:
        """Register a generator function ``(ctx, input)`` as an orchestrator (name: ``__name__``).

        With ``version``, it runs the instances of that version (``compare_versions`` equal),
        so one worker can host ``v1`` and ``v2`` of one name; a registration without a version
        runs the instances no versioned one matches.
        """
        return self._decorate(fn, name, functools.partial(self._add_orchestrator, version=version))

    @overload
    def activity(self, fn: F, /) -> F: ...
    @overload
    def activity(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...

    def activity(self, fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register a function ``(ctx, input)``, plain or ``async def``, as an activity."""
        return self._decorate(fn, name, self._add_activity)

    @overload
    def entity(self, fn: F, /) -> F: ...
    @overload
    def entity(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...

    def entity(self, fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register an entity class or function (``name`` is case-insensitive)."""
        return self._decorate(fn, name, self._add_entity)

    # --- lookups ---

    def get_orchestrator(self, name: str, version: str | None = None) -> RegisteredOrchestrator:
        """The code for instances of orchestrator ``name`` at ``version``: the registration of
        that version, else the unversioned one.

        Raises:
            UnknownVersionError: ``name`` has versioned code only, none for ``version``.
            LookupError: nothing is registered under that name.
        """
        versioned = self._versioned.get(name, [])
        for registered in versioned:
            if compare_versions(registered.version, version) == 0:
                return registered
        found = self._orchestrators.get(name)
        if found is not None:
            return found
        if versioned:
            known = ", ".join(repr(r.version) for r in versioned)
            shown = repr(version) if version else "(none)"
            raise UnknownVersionError(
                f"orchestrator {name!r} has no code for version {shown} and no unversioned "
                f"registration; registered versions: {known}"
            )
        raise LookupError(_unknown("orchestrator", name, {**self._orchestrators, **self._versioned}))

    def orchestrator_versions(self, name: str) -> list[str | None]:
        """The versions registered for ``name`` (``None`` for the unversioned one)."""
        versions: list[str | None] = [r.version for r in self._versioned.get(name, [])]
        return versions + ([None] if name in self._orchestrators else [])

    def get_activity(self, name: str) -> RegisteredActivity:
        """The activity registered as ``name``.

        Raises:
            LookupError: nothing is registered under that name.
        """
        found = self._activities.get(name)
        if found is None:
            raise LookupError(_unknown("activity", name, self._activities))
        return found

    def get_entity(self, name: str) -> RegisteredEntity:
        """The entity registered as ``name``, ignoring case.

        Raises:
            LookupError: nothing is registered under that name.
        """
        found = self._entities.get(name.casefold())
        if found is None:
            raise LookupError(_unknown("entity", name, {e.name: e for e in self._entities.values()}))
        return found

    @property
    def orchestrator_names(self) -> list[str]:
        return sorted({*self._orchestrators, *self._versioned})

    @property
    def activity_names(self) -> list[str]:
        return sorted(self._activities)

    @property
    def entity_names(self) -> list[str]:
        return sorted(e.name for e in self._entities.values())

    # --- registration ---

    def add_orchestrator(
        self, fn: Callable[..., Any], *, name: str | None = None, version: str | None = None
    ) -> str:
        """Register ``fn`` as an orchestrator; returns its name (durabletask's worker method)."""
        return self._add_orchestrator(fn, name, version=version)

    def add_activity(self, fn: Callable[..., Any], *, name: str | None = None) -> str:
        """Register ``fn`` as an activity; returns its name."""
        return self._add_activity(fn, name)

    def add_entity(self, target: Callable[..., Any] | type, *, name: str | None = None) -> str:
        """Register an entity class or function; returns its name."""
        return self._add_entity(target, name)

    def _decorate(
        self, fn: F | None, name: str | None, add: Callable[[Any, str | None], str]
    ) -> F | Callable[[F], F]:
        if fn is not None:
            add(fn, name)
            return fn

        def decorator(target: F) -> F:
            add(target, name)
            return target

        return decorator

    def _add_orchestrator(
        self, fn: Callable[..., Any], name: str | None, *, version: str | None = None
    ) -> str:
        registered = _name_for("orchestrator", fn, name)
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigurationError(
                f"orchestrator {registered!r} is async; orchestrators are generator functions "
                "(def ...: result = yield ctx.call_activity(...))"
            )
        if version is None:
            _refuse_duplicate("orchestrator", registered, self._orchestrators)
            self._orchestrators[registered] = RegisteredOrchestrator(name=registered, fn=fn)
        else:
            if not isinstance(version, str) or not version.strip():
                raise ConfigurationError(
                    f"version of orchestrator {registered!r} must be a non-empty string, got {version!r}"
                )
            versions = self._versioned.setdefault(registered, [])
            for existing in versions:
                if compare_versions(existing.version, version) == 0:
                    raise ConfigurationError(
                        f"orchestrator {registered!r} version {existing.version!r} is already registered"
                        + (f" (the same version as {version!r})" if existing.version != version else "")
                    )
            versions.append(RegisteredOrchestrator(name=registered, fn=fn, version=version))
        _note_name(fn, registered)
        return registered

    def _add_activity(self, fn: Callable[..., Any], name: str | None) -> str:
        registered = _name_for("activity", fn, name)
        _refuse_duplicate("activity", registered, self._activities)
        is_async = inspect.iscoroutinefunction(fn)
        self._activities[registered] = RegisteredActivity(name=registered, fn=fn, is_async=is_async)
        _note_name(fn, registered)
        return registered

    def _add_entity(self, target: Callable[..., Any] | type, name: str | None) -> str:
        registered = _name_for("entity", target, name)
        key = registered.casefold()
        if key in self._entities:
            existing = self._entities[key].name
            raise ConfigurationError(
                f"an entity named {existing!r} is already registered (entity names ignore case)"
            )
        self._entities[key] = RegisteredEntity(name=registered, target=target)
        _note_name(target, registered)
        return registered


def _name_for(kind: Kind, fn: object, name: str | None) -> str:
    if not callable(fn):
        raise ConfigurationError(f"cannot register {fn!r} as an {kind}: it is not callable")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"{kind} name must be a non-empty string, got {name!r}")
        return name
    default = getattr(fn, "__name__", None)
    if not isinstance(default, str) or default == "<lambda>":
        raise ConfigurationError(f"cannot take an {kind} name from {fn!r}; pass name=...")
    return default


def _refuse_duplicate(kind: Kind, name: str, registry: dict[str, Any]) -> None:
    if name in registry:
        raise ConfigurationError(f"an {kind} named {name!r} is already registered; choose another name")


def _note_name(fn: object, name: str) -> None:
    try:
        setattr(fn, REGISTERED_NAME_ATTRIBUTE, name)
    except (AttributeError, TypeError):  # bound methods, builtins: calls fall back to __name__
        pass


_PLURAL = {"orchestrator": "orchestrators", "activity": "activities", "entity": "entities"}


def _unknown(kind: Kind, name: str, registry: dict[str, Any]) -> str:
    known = ", ".join(repr(n) for n in sorted(registry)) or "none"
    return f"no {kind} named {name!r} is registered; registered {_PLURAL[kind]}: {known}"
