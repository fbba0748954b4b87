"""`python -m forecaster` is the same as the `forecaster` console script."""
import sys

from forecaster.cli import main

sys.exit(main())
