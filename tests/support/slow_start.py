"""A worker's warm module that takes seconds to import, as a decoder's imports do on cores
with no time to spare, then leaves a mark (in ``SLOW_START_MARK``) that it is done."""

import os
import time
from pathlib import Path

time.sleep(4)
Path(os.environ["SLOW_START_MARK"]).write_text("ready")
