"""Watches: server-streamed order changes, fanned out in process from the near cache's feed.

`hub.py` routes each change the feed applies to the watches that want it, through a bounded
`mailbox.py` per watch; `order_stream.py` and `board_stream.py` are the two RPCs' streams;
`watches.py` is what the API calls.
"""

from uoom_orders.watch.hub import Subscription, WatchHub, WatchLimits
from uoom_orders.watch.watches import Watches

__all__ = ["Subscription", "WatchHub", "WatchLimits", "Watches"]
