"""torch in the processes that ``nlp.pipe(texts, n_process=N)`` forks.

On Linux spaCy's worker processes are forked. The OpenMP thread pool that torch used in the
parent does not exist in a forked child, and the child's first parallel region waits for it
forever: ``nlp.pipe(n_process=2)`` hung. A child that runs torch on one thread never enters a
parallel region (and N processes on one thread each is what the user asked for), so every
forked child is set to one torch thread; the parent is left as it is.
"""

import os

import torch

_installed = False


def _one_thread_in_child() -> None:
    torch.set_num_threads(1)


def install_fork_hook() -> None:
    """Give every process forked from now on one torch thread (idempotent; no-op without fork)."""
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_one_thread_in_child)
        _installed = True
