"""Packing to Discord's limits: whatever goes in, what comes out is postable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from astra.sinks.messages import (
    DESCRIPTION_MAX,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_PER_EMBED,
    FILES_PER_MESSAGE,
    FOOTER_MAX,
    MESSAGE_TEXT_MAX,
    TITLE_MAX,
    Attachment,
    Embed,
    Field,
    Footer,
    code_block,
    escape_code,
    escape_text,
    pack_messages,
)

text = st.one_of(st.text(max_size=8000), st.sampled_from([" ", "\n \t", ""]))
fields = st.lists(st.builds(Field, text, text, st.booleans()), max_size=40)
embeds = st.lists(
    st.builds(
        Embed,
        title=text,
        description=st.text(max_size=9000),
        color=st.integers(-10, 2**25),
        fields=fields,
        footer=st.one_of(st.none(), st.builds(Footer, text)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(embeds, st.integers(0, 23))
def test_packed_messages_respect_every_limit(raw: list[Embed], file_count: int) -> None:
    """Whatever embeds and files go in, every packed message is within all of Discord's limits."""
    files = [Attachment(f"f{i}.jsonl.gz", b"x") for i in range(file_count)]
    messages = pack_messages(raw, files)
    assert sum(len(m.files) for m in messages) == file_count
    for message in messages:
        assert not message.is_empty()
        assert len(message.embeds) <= EMBEDS_PER_MESSAGE
        assert len(message.files) <= FILES_PER_MESSAGE
        assert sum(e.text_length() for e in message.embeds) <= MESSAGE_TEXT_MAX
        for embed in message.embeds:
            assert not embed.is_empty()
            assert len(embed.title) <= TITLE_MAX
            assert len(embed.description) <= DESCRIPTION_MAX
            assert len(embed.fields) <= FIELDS_PER_EMBED
            assert 0 <= embed.color <= 0xFFFFFF
            assert embed.footer is None or len(embed.footer.text) <= FOOTER_MAX
            assert embed.footer is None or embed.footer.text.strip()
            for field in embed.fields:
                assert 0 < len(field.name) <= FIELD_NAME_MAX and field.name.strip()
                assert 0 < len(field.value) <= FIELD_VALUE_MAX and field.value.strip()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=80), st.integers(20, 1024))
def test_code_blocks_stay_closed_and_within_limit(lines: list[str], limit: int) -> None:
    """A code block of any lines fits its limit, with one opening and one closing fence."""
    block = code_block(lines, limit)
    assert len(block) <= limit
    if block:
        assert block.startswith("```\n") and block.endswith("\n```")
        assert block.count("```") == 2


@given(st.text(alphabet="`ab\n", max_size=60))
def test_no_backtick_run_can_close_a_code_block_early(text: str) -> None:
    """Escaped code holds no run of three backticks that could close its block."""
    assert "```" not in escape_code(text)


def test_mentions_are_broken_and_markdown_escaped() -> None:
    """Escaped text holds no live mention (everyone, here, user, role, channel) or bold."""
    escaped = escape_text("@everyone @here <@123> <@&456> <#789> **bold**")
    for live in ("@everyone", "@here", "<@123>", "<@&456>", "<#789>", "**"):
        assert live not in escaped
