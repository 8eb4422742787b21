"""``python -m ncsproc.pipeline extract PATH... --out DIR`` (same as ``ncsproc extract``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
