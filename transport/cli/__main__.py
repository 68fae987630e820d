"""``python -m transport.cli``: the ``transport`` command."""

from transport.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
