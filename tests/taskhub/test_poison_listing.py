"""PoisonListing.more: how many messages a listing left out because a peek sees at most 32."""

from __future__ import annotations

from durablehub.taskhub import quarantine
from durablehub.taskhub.poison import PEEK_LIMIT, PoisonEntry, PoisonListing


def entries(n: int) -> list[PoisonEntry]:
    return [PoisonEntry(message_id=str(i), inserted_on=None, record=quarantine.bare("{}")) for i in range(n)]


def test_a_full_peek_leaves_out_what_the_count_has_beyond_it() -> None:
    assert PoisonListing(entries=entries(PEEK_LIMIT), approximate_count=PEEK_LIMIT + 8).more == 8


def test_a_peek_short_of_its_limit_saw_every_visible_message() -> None:
    """The count is read after the peek: a message that arrived in between (or one hidden by a
    requeue under way) is not one the peek could not reach, and 'showing the oldest 0 of about
    1' would send the user looking for a limit that was never hit."""
    assert PoisonListing(entries=entries(0), approximate_count=1).more == 0
    assert PoisonListing(entries=entries(3), approximate_count=5).more == 0
