"""``python -m relightvid_core``: the ``relightvid`` command."""

from .cli import main

raise SystemExit(main())
