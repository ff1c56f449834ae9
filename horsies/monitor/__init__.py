"""`horsies monitor`: the terminal dashboard (monitoring.md §3), built on textual.

It reads only through the broker's inspection methods (monitoring.md §2);
importing this package needs the ``monitor`` extra.
"""

from horsies.monitor.app import MonitorApp

__all__ = ["MonitorApp"]
