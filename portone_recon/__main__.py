import sys

from portone_recon.cli import main

sys.exit(main())
