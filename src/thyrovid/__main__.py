import sys

from thyrovid.cli import main

sys.exit(main())
