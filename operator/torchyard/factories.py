"""Which model factories torchyard imports and calls.

A factory ('package.module:function') is code: importing its module runs the module, and
the function runs with whatever kwargs come with it. Factories come from a spec's
`model.factory` and from the `base.factory` of a torchyard artifact's manifest.json,
which anyone who can write to the artifact store controls. So torchyard calls only its
own factories and those the operator's administrator allows (`torchyard operator
--allowed-factories`, or TORCHYARD_ALLOWED_FACTORIES on the operator), and refuses any
other before its module is imported: in the operator at admission (a spec's factory),
and in every pod (an artifact's), which the operator gives the same list.

Pure and without torch: the operator imports it too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from torchyard.api.common import FACTORY_PATTERN

ALLOWED_FACTORIES_ENV = "TORCHYARD_ALLOWED_FACTORIES"
"""The administrator's factories, comma-separated: 'module:function' or 'module:*'."""
REASON = "FactoryNotAllowed"
BUILTIN_MODULE = "torchyard.workloads.models"
BUILTIN = tuple(f"{BUILTIN_MODULE}:{name}" for name in ("mlp", "cnn", "lstm_classifier"))
"""torchyard's own factories, always allowed. Named one by one: the module also holds
loaders (load_path, fetch...) that must not be callable from a manifest."""

_FACTORY = re.compile(FACTORY_PATTERN)
_ENTRY = re.compile(FACTORY_PATTERN.rsplit(":", 1)[0] + r":(\*|[A-Za-z_][A-Za-z0-9_]*)$")


class FactoryNotAllowed(Exception):
    """A factory outside torchyard's own and the administrator's list; permanent."""

    reason = REASON

    def __init__(self, factory: str, allowed: tuple[str, ...], where: str = "") -> None:
        place = f" ({where})" if where else ""
        extra = f"; the administrator allows {', '.join(allowed)}" if allowed else ""
        super().__init__(
            f"factory {factory!r}{place} is not allowed: torchyard imports and calls only "
            f"its own factories ({', '.join(BUILTIN)}){extra}. To use it, the operator's "
            f"administrator adds it to --allowed-factories (or {ALLOWED_FACTORIES_ENV}) "
            "on the operator, e.g. 'mypackage.models:build' or 'mypackage.models:*'"
        )
        self.factory = factory


def parse_allowed(raw: str) -> tuple[str, ...]:
    """'a.b:f, a.c:*' -> ('a.b:f', 'a.c:*'); raises ValueError naming a bad entry."""
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        if not _ENTRY.fullmatch(entry):
            raise ValueError(
                f"{ALLOWED_FACTORIES_ENV}: {entry!r} is not 'package.module:function' or "
                "'package.module:*'"
            )
    return entries


def allowed_factories(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The administrator's list, from the environment (the operator's, or the pod's)."""
    environ = os.environ if environ is None else environ
    return parse_allowed(environ.get(ALLOWED_FACTORIES_ENV, ""))


def pod_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the operator passes on to every pod it creates: its own list (none when it
    allows only torchyard's factories, so a default install's pods do not change)."""
    allowed = allowed_factories(environ)
    return {ALLOWED_FACTORIES_ENV: ",".join(allowed)} if allowed else {}


def is_allowed(factory: str, allowed: tuple[str, ...]) -> bool:
    if not isinstance(factory, str) or not _FACTORY.fullmatch(factory):
        return False
    if factory in BUILTIN:
        return True
    module, _, name = factory.partition(":")
    # A module's wildcard covers its public names only.
    return factory in allowed or (f"{module}:*" in allowed and not name.startswith("_"))


def check_factory(factory: Any, allowed: tuple[str, ...], where: str = "") -> None:
    """Raise FactoryNotAllowed unless `factory` may be imported and called."""
    if not is_allowed(factory, allowed):
        raise FactoryNotAllowed(str(factory)[:300], allowed, where)


def named_factories(model: BaseModel, path: str = "spec") -> Iterator[tuple[str, str]]:
    """(field path, factory) of every `factory` a parsed spec names, at any depth."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        here = f"{path}.{info.alias or name}"
        if name == "factory" and isinstance(value, str):
            yield here, value
        elif isinstance(value, BaseModel):
            yield from named_factories(value, here)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from named_factories(item, f"{here}[{index}]")
