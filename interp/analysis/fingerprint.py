"""What an analyzer computes, as a hash: the key under which ``sweep`` caches
its results.

The fingerprint covers the analyzer's code (bytecode, constants, names,
nested code), its defaults, the values its closure captures, the arguments of
a ``functools.partial``, an optional ``version`` attribute, and — followed
through its globals — the code of every function of its own package it calls
by name (``fn(...)`` or ``module.fn(...)``). Editing an analyzer or a helper
it calls, or redefining it in a notebook cell, changes the key, so the cache
never serves results of other code.

Some analyzers cannot be fingerprinted stably: lambdas (named ``<lambda>``,
so their results could not be told apart in a table either) and closures or
partials over objects without a stable value (a model, an open file). For
those :func:`fingerprint` raises :class:`Unstable`; ``sweep`` computes them
but does not cache them, and says so.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect
import types
from typing import Any


class Unstable(Exception):
    """The analyzer has no stable fingerprint (the message says why)."""


def fingerprint(fn: Any) -> str:
    """A hex digest that changes whenever what ``fn`` computes may change."""
    h = hashlib.sha256()
    try:
        _feed(h, fn, set())
    except RecursionError:
        raise Unstable("what it captures refers to itself") from None
    return h.hexdigest()


def _feed(h: Any, fn: Any, seen: set[int]) -> None:
    if isinstance(fn, functools.partial):
        h.update(b"partial")
        _feed(h, fn.func, seen)
        h.update(_stable(fn.args, seen).encode())
        h.update(_stable(fn.keywords, seen).encode())
        return
    version = getattr(fn, "version", None)
    if version is not None:
        h.update(f"version={version!r}".encode())
    if inspect.ismethod(fn):
        h.update(_stable(fn.__self__, seen).encode())
        fn = fn.__func__
    if isinstance(fn, types.FunctionType):
        # a decorator that wraps with functools.wraps (e.g. a runtime type
        # checker) leaves what is computed to the function it wraps
        fn = inspect.unwrap(fn)
        if fn.__name__ == "<lambda>":
            raise Unstable("it is a lambda; define it with def (a name) to cache it")
        _feed_function(h, fn, seen)
        return
    if callable(fn):  # a callable object
        h.update(f"{type(fn).__module__}.{type(fn).__qualname__}".encode())
        _feed_function(h, type(fn).__call__, seen)
        h.update(_stable(getattr(fn, "__dict__", {}), seen).encode())
        return
    raise Unstable(f"{fn!r} is not a function")


def _feed_function(h: Any, fn: types.FunctionType, seen: set[int]) -> None:
    if id(fn) in seen:
        h.update(f"<recursion {fn.__qualname__}>".encode())
        return
    seen.add(id(fn))
    h.update(f"{fn.__module__}.{fn.__qualname__}".encode())
    _feed_code(h, fn.__code__)
    h.update(_stable(fn.__defaults__, seen).encode())
    h.update(_stable(fn.__kwdefaults__, seen).encode())
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            value = None
        h.update(_stable(value, seen).encode())
    for called in _called_functions(fn):
        _feed(h, called, seen)


def _feed_code(h: Any, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    h.update(repr(code.co_varnames).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        else:
            h.update(repr(const).encode())


def _package(module: str | None) -> str:
    return (module or "").split(".")[0]


def _called_functions(fn: types.FunctionType) -> list[Any]:
    """Functions of ``fn``'s own package that its code names through its
    globals: ``helper`` and ``module.helper`` (one level of attribute)."""
    home = _package(fn.__module__)
    names = set(_all_names(fn.__code__))
    out = []
    for name in sorted(names):
        if name not in fn.__globals__:
            continue
        value = fn.__globals__[name]
        if isinstance(value, types.ModuleType) and _package(value.__name__) == home:
            for attr in sorted(names):
                member = getattr(value, attr, None)
                if _is_own_function(member, home):
                    out.append(member)
        elif _is_own_function(value, home):
            out.append(value)
    return out


def _is_own_function(value: Any, home: str) -> bool:
    """A function (or a partial of one) defined in package ``home``."""
    if isinstance(value, functools.partial):
        value = value.func
    return (
        isinstance(value, types.FunctionType)
        and home not in ("", "builtins")
        and _package(value.__module__) == home
    )


def _all_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_all_names(const))
    return names


def _stable(value: Any, seen: set[int]) -> str:
    """A text that is equal for equal values and never depends on object ids."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, enum.Enum):
        return f"enum:{type(value).__qualname__}.{value.name}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}[" + ",".join(_stable(v, seen) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "set[" + ",".join(sorted(_stable(v, seen) for v in value)) + "]"
    if isinstance(value, dict):
        items = sorted((_stable(k, seen), _stable(v, seen)) for k, v in value.items())
        return "dict{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, type):
        return f"type:{value.__module__}.{value.__qualname__}"
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return f"{type(value).__qualname__}(" + _stable(fields, seen) + ")"
    if type(value).__name__ in ("Tensor", "Parameter") and hasattr(value, "detach"):
        import torch

        t = value.detach().to("cpu").contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        return f"tensor:{t.dtype}:{tuple(t.shape)}:{hashlib.sha256(data).hexdigest()}"
    if callable(value):
        h = hashlib.sha256()
        _feed(h, value, seen)
        return f"fn:{h.hexdigest()}"
    raise Unstable(f"it captures a {type(value).__name__}, which has no stable value")


__all__ = ["Unstable", "fingerprint"]
