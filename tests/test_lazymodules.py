"""store.lazymodules: a heavy module is imported on first use, once, also when threads race for it."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CODE = """
import sys, threading
from store.lazymodules import pandas as pd
assert "pandas" not in sys.modules
seen = []
threads = [threading.Thread(target=lambda: seen.append(pd.DataFrame)) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
import pandas
assert seen == [pandas.DataFrame] * 8 and isinstance(pd.DataFrame({"a": [1]}), pandas.DataFrame)
print("ok")
"""


def test_pandas_is_imported_on_first_use_even_by_racing_threads():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
