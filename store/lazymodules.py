"""Heavy modules imported on first use, not at start-up.

`pandas` (with numpy, ~45 MB of a server's memory) is needed only by the view
callbacks that build data frames; the server at rest, the webhook and the
API never touch it.  A module that wants it lazily writes

    from __future__ import annotations  # annotations like `-> pd.DataFrame` stay unevaluated
    from store.lazymodules import pandas as pd

and uses `pd` as usual (`numpy` likewise): the first attribute read imports it (under
Python's import lock, so concurrent first calls are safe), and each later
read is one attribute lookup more.
"""
import importlib


class LazyModule:
    """Stands for the module `name`; imports it when one of its attributes is first read."""

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def __getattr__(self, attribute: str):
        module = self._module
        if module is None:
            # import_module, not sys.modules: a module another thread is still importing is in
            # sys.modules half-made, and import_module waits for it on the module's import lock.
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


pandas = LazyModule("pandas")
numpy = LazyModule("numpy")
