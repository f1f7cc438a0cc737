"""The processes that run the milter: one supervisor, N workers on one socket.

- serve.py: the entry point; opens the socket, starts the supervisor.
- supervise.py: the supervisor (forks, restarts, stops, reloads on SIGHUP).
- workers.py: one worker's life (its signals, drain, counts).
- listener.py: a worker's hold on libmilter's listening descriptor.
- balance.py: connections shared out evenly among the workers.
- sockets.py: the socket spec, its file, who serves it.

The callbacks that handle mail are adapters/pymilter.py, the only importer of Milter; this
package runs libmilter through pymilter.LIBMILTER (its C module) and never handles mail.
"""
