"""Fleet mode: many sidecars publish into Redis Streams, the one lease holder posts.

Members append their stamped events to one Redis stream (``publisher``); one member at a
time holds the lease (``lease``) and reads the stream through a consumer group
(``poster``), forming the windows, posting, and acknowledging entries only after Discord
stored them (``acks``). ``silence`` turns a member that stopped reporting into an alert;
``node`` runs a member's roles and its fallback to direct posting. Imported only when
``[fleet]`` is configured: a sidecar without it never loads redis-py.
"""
