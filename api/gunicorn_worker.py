"""gunicorn's gthread worker, with new connections spread across the workers.

All workers accept from one listening socket. When a client opens many
keep-alive connections at once (a load balancer's upstream pool, a benchmark),
whichever worker is on a CPU accepts them in a tight loop while its peers wait
for a time slice: on two cores, a quarter of the runs put all 16 of wrk's
connections into one worker, which then serves them on one core (its GIL)
while the other worker idles. Throughput halved, latency tails grew.

Here a worker that already holds a connection per thread waits a moment
before accepting another, so an idle peer takes it first. If no peer does, it
accepts after the pause: nothing is refused, and a worker with free threads
never waits.
"""

from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

ACCEPT_PAUSE_S = 0.002  # a peer's wake-up on a busy machine; once per connection


class BalancedThreadWorker(ThreadWorker):
    def accept(self, listener):
        if self.cfg.workers > 1 and self.nr_conns >= self.cfg.threads:
            time.sleep(ACCEPT_PAUSE_S)
        super().accept(listener)
