"""``python -m pyro_ar ...`` (and ``torchrun -m pyro_ar ...``): the ``pyro-ar`` program."""

import sys

from pyro_ar.program.cli import main

if __name__ == "__main__":
    sys.exit(main())
