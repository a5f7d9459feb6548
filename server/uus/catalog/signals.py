"""Signals other apps subscribe to, so that the catalog never imports them (apps depend one way)."""

from django.dispatch import Signal

# sent after notices were stored or replaced; kwargs: notice_ids (list[str])
notices_changed = Signal()
# sent after an upstream's package indexes were replaced; kwargs: upstream (Upstream), index_ids (list[int])
archive_changed = Signal()
