"""Entry point of `python -m lab_services.service`; see main.py."""

import sys

from lab_services.service.main import main

sys.exit(main())
