"""Fixed numbers of the inventory and the agent protocol (candidates for uus.conf keys)."""

from datetime import timedelta

CHECK_IN_INTERVAL = 3600  # seconds between an agent's regular check-ins
STALE_AFTER = timedelta(hours=24)  # a machine not seen for this long is "stale"
PACKAGE_SET_GRACE = timedelta(minutes=10)  # unreferenced sets younger than this are kept
