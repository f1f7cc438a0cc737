"""The pure core: no pymilter, no sockets, no DNS library. Adapters feed it transactions."""
