"""``python -m ciss_vae.cli``: the same as the ``ciss-vae`` command."""

from ciss_vae.cli import main

raise SystemExit(main())
