"""``python -m _zerocloud_select``: run the select (see ``engine``)."""

import sys

from .engine import main

sys.exit(main())
