import sys

from dkmeans.cli import main

sys.exit(main())
