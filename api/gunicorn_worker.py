"""gunicorn's gthread worker, with new connections spread across the workers.

All workers accept from one listening socket. When a client opens many
keep-alive connections at once (a load balancer's upstream pool, a benchmark),
whichever worker is on a CPU accepts them in a tight loop while its peers wait
for a time slice: on two cores, 2 of 6 benchmark rounds put all 16 of wrk's
connections into one worker, which then served them on one core (its GIL)
while the other worker idled. Throughput halved, latency tails grew.

Here a worker that already holds twice as many connections as it has threads
waits a moment before accepting another, so a less busy peer takes it first.
If no peer does, it accepts after the pause: nothing is refused, and a worker
below that mark never waits. The mark is twice the threads, not the threads,
so that a client opening a connection per request (no keep-alive, which the
chart's ingress does not do) meets the pause only once a worker already has a
queue of its own.
"""

from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

ACCEPT_PAUSE_S = 0.002  # a peer's wake-up on a busy machine


class BalancedThreadWorker(ThreadWorker):
    def accept(self, listener):
        if self.cfg.workers > 1 and self.nr_conns >= 2 * self.cfg.threads:
            time.sleep(ACCEPT_PAUSE_S)
        super().accept(listener)
