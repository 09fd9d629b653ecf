"""Reading astra's channels back: Discord is the store, and this is how it is read.

History is listed with the bot token, each astra post's attachments are fetched (from the
listing, or through astra's own webhook when the bot lacks the Message Content intent),
decoded and validated with the event schema, de-duplicated and checked for gaps, and handed
on in the order the events happened: to ``astra export`` as NDJSON, and to the sidecar's
projections (recovery at start, ``astra report``). Streamed: memory does not grow with the
length of the history.
"""
