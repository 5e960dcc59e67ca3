import sys

from dkmeans.cli.main import main

sys.exit(main())
