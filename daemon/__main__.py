import sys

from nbsd.cli import main

sys.exit(main())
