"""The name book: latest name wins, bounded, and ids stay ids until a name is seen."""

from __future__ import annotations

from astra.events import Command, Guild, Member, Message, Reaction
from astra.sinks.render.names import SHOWN_CHARS, NameBook


def test_names_are_learned_from_every_kind_and_the_latest_wins() -> None:
    """Messages, guild joins and members name guilds; a rename replaces the old name."""
    book = NameBook()
    book.learn(
        [
            Message(guild_id=1, channel_id=10, guild_name="Cats", channel_name="general"),
            Guild(action="join", guild_id=2, name="Dogs"),
            Member(action="join", guild_id=3, user_id=5, guild_name="Birds"),
            Reaction(action="add", emoji="x", guild_id=1, channel_id=11, channel_name="memes"),
        ]
    )
    book.observe_many([Command(name="c", guild_id=1, guild_name="Lions")])
    assert [book.guild(g) for g in (1, 2, 3, 4)] == ["Lions", "Dogs", "Birds", "4"]
    assert [book.channel(c) for c in (10, 11, 12)] == ["#general", "#memes", "12"]


def test_the_book_is_bounded_and_long_names_are_cut() -> None:
    """The name learned longest ago goes first; shown names are cut to SHOWN_CHARS."""
    book = NameBook(max_names=2)
    for guild_id in (1, 2, 3):
        book.observe_many([Message(guild_id=guild_id, guild_name=f"g{guild_id}" * 40)])
    assert book.guild(1) == "1"
    shown = book.guild(3)
    assert len(shown) == SHOWN_CHARS and shown.endswith("…")
