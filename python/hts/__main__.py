"""``python -m hts``: the same as the ``hts`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
