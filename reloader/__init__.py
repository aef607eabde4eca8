"""config-reloader: render a config (gzip, ``$(VAR)``), write it atomically, reload the target.

Modules, in the order a trigger passes through them:
``render`` (bytes in, bytes out), ``write`` (atomic file replace), ``watch`` (events and ticker),
``reload`` (HTTP POST or SIGHUP), ``serve`` (/metrics, /healthz, /readyz); ``app`` ties them together
and ``cli`` runs the prometheus-config-reloader flags (``flags`` holds them as a table; ``command`` is
click's view of it, for help and errors).
"""

__version__ = "0.1.0"
