"""`python -m ptycho_batch` is the `ptybatch` command."""

from ptycho_batch.cli.main import main

raise SystemExit(main())
