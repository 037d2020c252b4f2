"""``python -m kerastl.cli``: the same as the ``kerastl`` command."""

from kerastl.cli import main

if __name__ == "__main__":
    main(prog_name="kerastl")
