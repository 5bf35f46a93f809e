"""The sweep cache never serves results of other code: it is keyed by the
analyzer's fingerprint (code, what it calls, its arguments), and analyzers
without one are computed every time."""

from __future__ import annotations

import functools
import importlib
import sys
import textwrap
import warnings

import pytest

from interp.analysis import sweep
from interp.analysis.fingerprint import Unstable, fingerprint


def _value(df, metric="x"):
    return float(df[df["metric"] == metric]["value"].iloc[0])


def test_two_lambdas_are_computed_not_cached(tiny_run):
    with pytest.warns(UserWarning, match="<lambda> is computed but not cached: it is a lambda"):
        one = sweep(tiny_run, [lambda model: {"x": 1.0}], steps=[0])
    with pytest.warns(UserWarning, match="not cached"):
        two = sweep(tiny_run, [lambda model: {"x": 2.0}], steps=[0])
    assert (_value(one), _value(two)) == (1.0, 2.0)


def test_a_function_redefined_in_a_notebook_cell_is_recomputed(tiny_run):
    def probe(model):
        return {"x": 1.0}

    assert _value(sweep(tiny_run, [probe], steps=[0])) == 1.0

    def probe(model):
        return {"x": 2.0}

    assert _value(sweep(tiny_run, [probe], steps=[0])) == 2.0


def test_closure_values_defaults_and_partial_arguments_are_part_of_the_key(tiny_run):
    def make(k):
        def scaled(model):
            return {"x": float(k)}

        return scaled

    assert _value(sweep(tiny_run, [make(3)], steps=[0])) == 3.0
    assert _value(sweep(tiny_run, [make(4)], steps=[0])) == 4.0

    def with_arg(model, k=1.0):
        return {"x": k}

    assert _value(sweep(tiny_run, [functools.partial(with_arg, k=5.0)], steps=[0])) == 5.0
    assert _value(sweep(tiny_run, [functools.partial(with_arg, k=6.0)], steps=[0])) == 6.0


def test_editing_a_helper_the_analyzer_calls_invalidates_the_cache(tiny_run, tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")

    def write(value: float) -> None:
        (pkg / "helpers.py").write_text(f"def value():\n    return {value}\n")
        (pkg / "analyzers.py").write_text(
            textwrap.dedent("""
            from mypkg import helpers

            def measured(model):
                return {"x": helpers.value()}
        """)
        )

    monkeypatch.syspath_prepend(str(tmp_path))
    write(1.0)
    mod = importlib.import_module("mypkg.analyzers")
    key1 = fingerprint(mod.measured)
    assert _value(sweep(tiny_run, [mod.measured], steps=[0])) == 1.0
    write(2.0)  # only the helper changes
    importlib.reload(sys.modules["mypkg.helpers"])
    mod = importlib.reload(mod)
    assert fingerprint(mod.measured) != key1
    assert _value(sweep(tiny_run, [mod.measured], steps=[0])) == 2.0


CALLS: list[int] = []  # a global, not a closure value: not part of the key


def counted(model):
    CALLS.append(1)
    return {"x": 7.0}


def test_refresh_recomputes_and_cache_false_neither_reads_nor_writes(tiny_run):
    calls = CALLS
    calls.clear()

    sweep(tiny_run, [counted], steps=[0, 20])
    sweep(tiny_run, [counted], steps=[0, 20])
    assert len(calls) == 2  # the second call is served from the cache
    sweep(tiny_run, [counted], steps=[0, 20], cache="refresh")
    assert len(calls) == 4
    sweep(tiny_run, [counted], steps=[0, 20], cache=False)
    assert len(calls) == 6
    with pytest.raises((ValueError, TypeError), match="cache"):  # ours, or beartype's
        sweep(tiny_run, [counted], cache="sometimes")


def test_an_unreadable_cache_file_is_recomputed(tiny_run):
    from interp import open_run

    def stable(model):
        return {"x": 3.0}

    sweep(tiny_run, [stable], steps=[0])
    folder = open_run(tiny_run).path / "analysis" / "stable"
    for f in folder.glob("*.json"):
        f.write_text("5")  # valid JSON of the wrong shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _value(sweep(tiny_run, [stable], steps=[0])) == 3.0


def test_fingerprints_of_library_analyzers_are_stable_and_distinct():
    from interp.analysis import HEAD_ANALYZERS, head_analyzers, induction_scores

    keys = [fingerprint(fn) for fn in HEAD_ANALYZERS]
    assert len(set(keys)) == len(keys)
    assert keys == [fingerprint(fn) for fn in HEAD_ANALYZERS]
    ranged = head_analyzers((32, 127), [induction_scores])[0]
    other = head_analyzers((0, 64), [induction_scores])[0]
    assert fingerprint(ranged) != fingerprint(other) != fingerprint(induction_scores)


def test_what_cannot_be_fingerprinted_says_why():
    handle = open(__file__)
    try:

        def reads(model):
            return {"x": float(len(handle.name))}

        with pytest.raises(Unstable, match="captures a TextIOWrapper"):
            fingerprint(reads)
    finally:
        handle.close()
