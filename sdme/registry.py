"""One registry type for every extension point of SDME: sources, extractors, models, tasks, metrics.

A :class:`Registry` maps names to objects (factories, classes, records) and keeps, for each, a
dict of metadata given at registration. Adding an entry is adding one file: the registry knows
the packages its entries live in and imports every public module of them (``pkgutil``) the first
time it is asked for anything, so nothing lists modules by hand. Third-party packages add entries
through an entry-point group (``[project.entry-points."sdme.sources"]`` and so on), loaded the
same way. Unknown names fail with the known names and a close-match hint.

The shape follows lm-evaluation-harness's ``lm_eval/api/registry.py`` (one generic registry for
models, tasks and metrics, metadata beside each entry) and timm's ``register_model`` /
``create_model`` / ``list_models``.

Example::

    MODELS: Registry[ModelFactory] = Registry("model", packages=["baselines.models"])

    @MODELS.register("late_fusion", paper="...")
    def late_fusion(**config): ...

    MODELS.get("late_fusoin")   # RegistryError: unknown model 'late_fusoin'; ... 'late_fusion'?
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import pkgutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown name, or a name registered twice with different objects."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object.

    Attributes:
        name: the registered name.
        obj: the object (a factory, a class or a record).
        meta: metadata given at registration (read-only).
        module: the module that registered it.
    """

    name: str
    obj: T
    meta: Mapping[str, Any] = field(default_factory=dict)
    module: str = ""


def _origin(obj: Any) -> tuple[str, str] | None:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    return (module, qualname) if module and qualname else None


class Registry(Generic[T]):
    """Named objects of one kind, discovered from packages and entry points.

    Args:
        kind: what the entries are, for messages (``"source"``, ``"model"``, ...).
        packages: packages whose public modules (names not starting with ``_``) are imported
            before the first lookup, so that their ``register`` calls run.
        entry_point_group: an ``importlib.metadata`` entry-point group whose entries are loaded
            (imported) before the first lookup; default ``"sdme.<kind>s"``. ``""`` disables it.
    """

    def __init__(self, kind: str, *, packages: Sequence[str] = (),
                 entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.packages = tuple(packages)
        self.entry_point_group = (f"sdme.{kind.replace(' ', '_')}s" if entry_point_group is None
                                  else entry_point_group)
        self._entries: dict[str, Entry[T]] = {}
        self._discovered = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ registration

    def register(self, name: str, obj: T | None = None, /, **meta: Any) -> Any:
        """Registers ``obj`` under ``name``; without ``obj``, a decorator that does.

        Registering the same object again (or a reloaded module's object of the same module and
        qualified name) is allowed and replaces the entry.

        Raises:
            RegistryError: ``name`` is empty, or already taken by another object.
        """
        if obj is None:
            def decorator(target: T) -> T:
                self.register(name, target, **meta)
                return target

            return decorator
        if not isinstance(name, str) or not name or name != name.strip():
            raise RegistryError(f"bad {self.kind} name {name!r}")
        with self._lock:
            old = self._entries.get(name)
            if old is not None and old.obj is not obj and (
                    _origin(old.obj) is None or _origin(old.obj) != _origin(obj)):
                raise RegistryError(f"{self.kind} {name!r} is already registered "
                                    f"(by {old.module or 'another module'})")
            module = getattr(obj, "__module__", "") or ""
            self._entries[name] = Entry(name, obj, MappingProxyType(dict(meta)), module)
        return obj

    def unregister(self, name: str) -> None:
        """Removes ``name`` if registered (tests and plugins)."""
        with self._lock:
            self._entries.pop(name, None)

    # ------------------------------------------------------------------ discovery

    def discover(self) -> None:
        """Imports the registry's packages and entry points (once; later calls do nothing)."""
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True  # set first: modules being imported may look things up
            try:
                for package in self.packages:
                    module = importlib.import_module(package)
                    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
                        if not info.name.startswith("_"):
                            importlib.import_module(f"{package}.{info.name}")
                if self.entry_point_group:
                    for ep in importlib.metadata.entry_points(group=self.entry_point_group):
                        ep.load()
            except BaseException:
                self._discovered = False
                raise

    # ------------------------------------------------------------------ lookup

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries

    def __len__(self) -> int:
        self.discover()
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self.discover()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """Registered entries, sorted by name."""
        self.discover()
        return [self._entries[n] for n in sorted(self._entries)]

    def entry(self, name: str) -> Entry[T]:
        """The entry of ``name``.

        Raises:
            RegistryError: unknown name (the message lists the known ones and a close match).
        """
        self.discover()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    def get(self, name: str) -> T:
        """The object registered as ``name`` (see :meth:`entry`)."""
        return self.entry(name).obj

    def meta(self, name: str) -> Mapping[str, Any]:
        """The metadata registered with ``name``."""
        return self.entry(name).meta

    def filter(self, predicate: Callable[[Entry[T]], bool]) -> list[Entry[T]]:
        """Entries for which ``predicate(entry)`` is true, sorted by name."""
        return [e for e in self.entries() if predicate(e)]

    def unknown(self, name: object, known: Sequence[str] | None = None) -> RegistryError:
        """The error for an unknown ``name``: the known names and a close match."""
        known = sorted(self._entries) if known is None else list(known)
        hint = difflib.get_close_matches(str(name), known, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        listed = ", ".join(known) if known else "(none)"
        return RegistryError(f"unknown {self.kind} {name!r}; known: {listed}.{extra}")

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


__all__ = ["Entry", "Registry", "RegistryError"]
