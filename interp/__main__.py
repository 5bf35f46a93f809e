"""``python -m interp``: the command line, as the ``interp`` script."""

from interp.cli import main

if __name__ == "__main__":
    main()
