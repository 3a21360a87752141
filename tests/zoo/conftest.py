from __future__ import annotations

import sys
from pathlib import Path

# The zoo's modules import as `zoo.…` (tests/ on the path, like the other test folders).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
