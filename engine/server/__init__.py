"""The engine process and its client: ZeroMQ requests, control and events, signed with HMAC.

``protocol`` owns the wire; ``connection`` the connection file; ``server`` the engine; ``jobs``
the job queue and its journal; ``handlers`` what each request type does; ``exchange`` large
frames through a memory-mapped file; ``outputs`` where jobs may write; ``client`` the library
every front end uses; ``process`` starting and stopping this user's engine.
"""
