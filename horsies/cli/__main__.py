"""``python -m horsies.cli``."""

from __future__ import annotations

from horsies.cli import main

if __name__ == "__main__":
    main()
