"""RuntimeHolder: a swap reaches new connections; a connection keeps the runtime it negotiated."""

from __future__ import annotations

from tests.support.builders import runtime

from mailwarden.adapters.pymilter import MailwardenMilter, RuntimeHolder


def test_swap_takes_effect_from_the_next_connection() -> None:
    first = runtime("[rules]\nenabled = false\n")
    second = runtime("[rules]\nenabled = false\n[spf]\nenabled = false\n")
    holder = RuntimeHolder(first)
    connection = MailwardenMilter(holder)
    assert holder.swap(second) is first
    assert holder.current is second
    assert connection._runtime is first
    assert MailwardenMilter(holder)._runtime is second
