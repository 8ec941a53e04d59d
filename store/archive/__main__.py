"""`python -m store.archive ...` (store/archive/command.py)."""
import sys

from store.archive.command import main

sys.exit(main())
